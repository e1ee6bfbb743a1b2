"""Scale-in bookkeeping as pure logic: the bound-pods fold, node facts, since-when timers and
the pools' last scale-up."""

from __future__ import annotations

from typing import Any

from agent.ingest.node_pods import instance_id_of, node_facts, owner_kind
from agent.ingest.view import ClusterView
from agent.model import PoolActivity, PoolInfo
from agent.scale_in.tracking import ScaleUpLog, UnneededTracker, utilization
from tests.support.builders import ALLOCATABLE, NODE, T0, raw_node, raw_pod, stamp

# --- the bound-pods fold -----------------------------------------------------------------------


def test_owner_kinds_map_onto_the_contracts_set():
    """Known controllers pass through; RC → ReplicaSet, mirror → DaemonSet, unknown → none."""

    def kind(owners: list[dict[str, Any]]) -> str:
        return owner_kind({"ownerReferences": owners})

    assert kind([{"kind": "RayCluster", "controller": True}]) == "RayCluster"
    assert kind([{"kind": "ReplicationController", "controller": True}]) == "ReplicaSet"
    assert kind([{"kind": "Node", "controller": True}]) == "DaemonSet"
    assert kind([{"kind": "Workflow", "controller": True}]) == "none"
    assert kind([]) == "none"


def test_the_fold_follows_pods_across_nodes_and_drops_finished_ones():
    """A pod moves, finishes, is deleted: the per-node index and the change hook follow."""
    changed: list[str] = []
    view = ClusterView(on_node_pods=changed.append)
    pods = view.node_pods
    view.node_pods_sink.apply("ADDED", raw_pod("a"))
    assert [p.uid for p in pods.on_node(NODE)] == ["a"]
    view.node_pods_sink.apply("MODIFIED", raw_pod("a", node="other"))
    assert pods.on_node(NODE) == [] and [p.uid for p in pods.on_node("other")] == ["a"]
    assert changed[-2:] == [NODE, "other"]
    view.node_pods_sink.apply("MODIFIED", raw_pod("a", node="other", phase="Succeeded"))
    assert pods.on_node("other") == []
    view.node_pods_sink.apply("ADDED", raw_pod("b"))
    view.node_pods_sink.relisted(set())
    assert pods.pods == {} and pods.by_node == {}


def test_safe_to_evict_false_pins_the_pod():
    """cluster-autoscaler's opt-out annotation is honoured: the pod is PDB-blocked."""
    view = ClusterView()
    view.node_pods_sink.apply(
        "ADDED",
        raw_pod("a", annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}),
    )
    assert view.node_pods.on_node(NODE)[0].pinned


def test_node_facts_read_instance_id_cordon_and_ever_ready():
    """providerID → instance id; NotReady since registration means never Ready."""
    assert instance_id_of("cn-hangzhou.i-bp1abc") == "i-bp1abc"
    assert instance_id_of("") == ""
    facts = node_facts(raw_node(unschedulable=True))  # type: ignore[arg-type]
    assert (facts.instance_id, facts.created_at, facts.unschedulable) == ("i-bp1abc", T0, True)
    assert facts.ever_ready
    assert not node_facts(raw_node(ready=False)).ever_ready  # type: ignore[arg-type]
    fell_back = node_facts(raw_node(ready=False, transition=T0 + 600))  # type: ignore[arg-type]
    assert fell_back.ever_ready


# --- since-when timers -------------------------------------------------------------------------


def test_utilization_is_the_largest_share_and_ignores_daemonsets():
    """cpu 2 of 3.9 is the largest share; a DaemonSet pod is not load."""
    view = ClusterView()
    view.node_pods_sink.apply("ADDED", raw_pod("a", cpu="2"))
    view.node_pods_sink.apply("ADDED", raw_pod("d", cpu="3", owner="DaemonSet", ray=None))
    share = utilization(view.node_pods.on_node(NODE), ALLOCATABLE)
    assert abs(share - 2000 / 3900) < 1e-9
    assert utilization(view.node_pods.on_node(NODE)[:0], ALLOCATABLE) == 0.0


def test_a_request_the_node_does_not_offer_counts_as_full():
    """A pod asking for a GPU on a node without one must not make the node look idle."""
    view = ClusterView()
    pod = raw_pod("g")
    pod["spec"]["containers"][0]["resources"]["requests"] = {"nvidia.com/gpu": "1"}
    view.node_pods_sink.apply("ADDED", pod)
    assert utilization(view.node_pods.on_node(NODE), ALLOCATABLE) == 1.0


def test_empty_since_starts_at_first_sight_and_any_load_pod_clears_it():
    """The timer keeps its first stamp while the node stays empty; a pod resets it."""
    view = ClusterView()
    tracker = UnneededTracker(threshold=0.5)
    pods = view.node_pods
    tracker.observe(NODE, pods.on_node(NODE), ALLOCATABLE, now=T0)
    tracker.observe(NODE, pods.on_node(NODE), ALLOCATABLE, now=T0 + 30)
    assert tracker.empty_since(NODE) == T0
    view.node_pods_sink.apply("ADDED", raw_pod("d", owner="DaemonSet", ray=None))
    tracker.observe(NODE, pods.on_node(NODE), ALLOCATABLE, now=T0 + 40)
    assert tracker.empty_since(NODE) == T0, "a DaemonSet pod does not make a node busy"
    view.node_pods_sink.apply("ADDED", raw_pod("a", cpu="3"))
    tracker.observe(NODE, pods.on_node(NODE), ALLOCATABLE, now=T0 + 50)
    assert tracker.empty_since(NODE) is None and tracker.underutilized_since(NODE) is None
    view.node_pods_sink.apply("DELETED", raw_pod("a"))
    tracker.observe(NODE, pods.on_node(NODE), ALLOCATABLE, now=T0 + 60)
    assert tracker.empty_since(NODE) == T0 + 60


def test_underutilized_since_follows_the_threshold():
    """Below the threshold starts the timer; at or above it clears it."""
    view = ClusterView()
    tracker = UnneededTracker(threshold=0.5)
    view.node_pods_sink.apply("ADDED", raw_pod("a", cpu="1"))
    tracker.observe(NODE, view.node_pods.on_node(NODE), ALLOCATABLE, now=T0)
    assert tracker.underutilized_since(NODE) == T0 and tracker.empty_since(NODE) is None
    view.node_pods_sink.apply("ADDED", raw_pod("b", cpu="1"))
    tracker.observe(NODE, view.node_pods.on_node(NODE), ALLOCATABLE, now=T0 + 5)
    assert tracker.underutilized_since(NODE) is None


def test_a_new_tracker_knows_no_timers():
    """Timers live in memory only: a restarted agent starts every node's clock again."""
    assert UnneededTracker(threshold=0.5).empty_since(NODE) is None


def test_nodes_gone_from_the_view_lose_their_timers():
    """keep_only drops timers of nodes that no longer exist."""
    tracker = UnneededTracker(threshold=0.5)
    tracker.observe(NODE, [], ALLOCATABLE, now=T0)
    tracker.keep_only(["another"])
    assert tracker.empty_since(NODE) is None


# --- when pools last grew ----------------------------------------------------------------------


def pool(desired: int) -> PoolInfo:
    return PoolInfo(
        pool_id="np-cpu",
        name="cpu",
        instance_types=("ecs.g7.xlarge",),
        desired=desired,
        min_size=0,
        max_size=10,
    )


def test_a_desired_raise_seen_in_pool_reads_is_a_scale_up():
    """The first read is a baseline; a later higher desired stamps the time; lower does not."""
    log = ScaleUpLog()
    log.observe_pools([pool(2)], now=T0)
    assert log.last("np-cpu") is None
    log.observe_pools([pool(5)], now=T0 + 10)
    log.observe_pools([pool(3)], now=T0 + 20)
    assert log.last("np-cpu") == T0 + 10


def test_a_raise_in_flight_counts_through_scaling_since():
    """Actuation's scalingSince is later than any recorded raise: it wins."""
    log = ScaleUpLog()
    log.raised("np-cpu", at=T0)
    activity = PoolActivity(scaling_since=stamp(T0 + 30))
    assert log.last("np-cpu", activity) == T0 + 30
    assert log.last("np-cpu", PoolActivity()) == T0
