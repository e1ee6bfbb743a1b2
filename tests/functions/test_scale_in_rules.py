"""Decision tables for scale-in/v1: which node goes, which stays, and the reason given."""

from __future__ import annotations

from functions.scalein.decision import scale_in
from tests.support.scale_in_requests import ago, daemon, kept, node, pod, pool, removed, request

# --- emptiness, timers and threshold -------------------------------------------------------


def test_empty_node_past_unneeded_time_is_removed() -> None:
    """An empty node empty for 120 s (default 60 s) goes, with its instance id and reason."""
    reply = scale_in(request([node("a")]))
    assert reply["remove"] == [
        {
            "node": "a",
            "poolId": "np-cpu",
            "instanceId": "i-a",
            "reason": "empty for 120s (scaleDownUnneededSeconds 60)",
            "evicts": [],
        }
    ]
    assert reply["keep"] == []


def test_empty_node_inside_unneeded_time_stays() -> None:
    """Empty for 42 s of 60 s: kept, and the reason says how long is left."""
    reply = scale_in(request([node("a", emptySince=ago(42))]))
    assert removed(reply) == []
    assert kept(reply) == {"a": "empty for 42s of 60s"}


def test_untracked_empty_node_stays() -> None:
    """emptySince null (the agent just started) is the safe side: the clock starts now."""
    reply = scale_in(request([node("a", emptySince=None)]))
    assert kept(reply) == {"a": "empty, but not yet tracked as empty (emptySince is null)"}


def test_unneeded_seconds_is_a_policy() -> None:
    """scaleDownUnneededSeconds 600 (cluster-autoscaler's value) keeps a node empty for 120 s."""
    reply = scale_in(request([node("a")], scaleDownUnneededSeconds=600))
    assert kept(reply) == {"a": "empty for 120s of 600s"}


def test_busy_node_at_threshold_stays_even_when_draining() -> None:
    """2 of 4 cpu requested is 50%, not below the 0.5 threshold."""
    reply = scale_in(request([node("a", pod("p", cpu="2")), node("b")], drainNonEmpty=True))
    assert kept(reply)["a"] == "utilization 50% is not below scaleDownUtilizationThreshold 50%"
    assert removed(reply) == ["b"]


def test_memory_counts_towards_utilization() -> None:
    """Utilization is the largest share over resources: 12 of 16 GiB memory is 75%."""
    reply = scale_in(
        request([node("a", pod("p", cpu="100m", memory="12Gi")), node("b")], drainNonEmpty=True)
    )
    assert kept(reply)["a"].startswith("utilization 75% is not below")


def test_threshold_is_a_policy() -> None:
    """With the threshold at 0.8, the 50% node is underutilized and drained."""
    reply = scale_in(
        request(
            [node("a", pod("p", cpu="2")), node("k", pool=None)],
            drainNonEmpty=True,
            scaleDownUtilizationThreshold=0.8,
        )
    )
    assert removed(reply) == ["a"]


def test_non_empty_node_stays_without_drain() -> None:
    """drainNonEmpty false (default): a node with a Ray worker stays, named in the reason."""
    reply = scale_in(request([node("a", pod("p", cpu="500m")), node("b")]))
    assert kept(reply) == {"a": "runs 1 pod(s) (ray/rc-worker-p) and drainNonEmpty is false"}


def test_underutilized_node_waits_for_its_own_clock() -> None:
    """Draining waits on underutilizedSince: 30 s of 60 s keeps, null keeps."""
    reply = scale_in(
        request(
            [
                node("a", pod("p", cpu="500m"), underutilizedSince=ago(30)),
                node("b", pod("q", cpu="500m"), underutilizedSince=None),
                node("c", pool=None),
            ],
            drainNonEmpty=True,
        )
    )
    assert kept(reply) == {
        "a": "utilization 12.5% below 50% for 30s of 60s",
        "b": "utilization 12.5%, but not yet tracked as underutilized (underutilizedSince is null)",
        "c": "not in a managed node pool",
    }


# --- protected pods ------------------------------------------------------------------------


def test_ray_head_protects_its_node() -> None:
    """A node with the Ray head never goes, even when draining is allowed."""
    head = pod("h", cpu="100m", rayNodeType="head")
    reply = scale_in(request([node("a", head), node("b")], drainNonEmpty=True))
    assert kept(reply) == {"a": "node has a Ray head pod ray/rc-worker-h"}


def test_standalone_pod_protects_its_node() -> None:
    """A pod with no owner would be lost for good: its node stays."""
    lone = pod("s", cpu="100m", owner="none", rayNodeType=None, name="scratch")
    reply = scale_in(request([node("a", lone), node("b")], drainNonEmpty=True))
    assert kept(reply) == {"a": "pod ray/scratch has no owner (nothing would recreate it)"}


def test_pdb_blocked_pod_protects_its_node() -> None:
    """A pod whose PodDisruptionBudget allows no eviction now keeps its node."""
    guarded = pod("g", cpu="100m", owner="StatefulSet", pdbBlocked=True, name="db-0")
    reply = scale_in(request([node("a", guarded), node("b")], drainNonEmpty=True))
    assert kept(reply) == {"a": "pod ray/db-0 may not be evicted now (PodDisruptionBudget)"}


def test_daemonset_pods_are_not_load() -> None:
    """A node running only DaemonSet pods is empty: removed, and nothing is evicted."""
    reply = scale_in(request([node("a", daemon("d1"), daemon("d2"))]))
    assert removed(reply) == ["a"]
    assert reply["remove"][0]["evicts"] == []


def test_finished_pods_neither_protect_nor_move() -> None:
    """A Succeeded head pod or Failed standalone pod holds nothing: the node is empty."""
    reply = scale_in(
        request(
            [
                node(
                    "a",
                    pod("h", rayNodeType="head", phase="Succeeded"),
                    pod("s", owner="none", phase="Failed"),
                )
            ]
        )
    )
    assert removed(reply) == ["a"]


# --- pools: min, cool-down -----------------------------------------------------------------


def test_pool_never_goes_below_min() -> None:
    """Three empty nodes, min 2: exactly one goes; the others name the pool's min."""
    reply = scale_in(request([node("a"), node("b"), node("c")], [pool(min_size=2)]))
    assert len(removed(reply)) == 1
    assert set(kept(reply).values()) == {
        "pool np-cpu at min 2 (3 nodes, 1 leaving in this decision)"
    }


def test_min_counts_the_smaller_of_desired_and_nodes_present() -> None:
    """desired 2 with 3 nodes present (one already being removed): min 1 allows one removal."""
    reply = scale_in(request([node("a"), node("b"), node("c")], [pool(min_size=1, desired=2)]))
    assert len(removed(reply)) == 1


def test_min_is_per_pool() -> None:
    """One pool at its min does not stop another pool's empty nodes."""
    reply = scale_in(
        request(
            [node("a", pool="np-a"), node("b", pool="np-b"), node("c", pool="np-b")],
            [pool("np-a", min_size=1), pool("np-b", min_size=0)],
        )
    )
    assert removed(reply) == ["b", "c"]
    assert kept(reply) == {"a": "pool np-a at min 1 (1 nodes, 0 leaving in this decision)"}


def test_cool_down_after_scale_up() -> None:
    """The pool scaled up 30 s ago (cool-down 120 s): its empty nodes stay."""
    reply = scale_in(request([node("a")], [pool(lastScaleUpAt=ago(30))]))
    assert kept(reply) == {
        "a": "cool-down: pool np-cpu scaled up 30s ago (scaleDownDelayAfterAddSeconds 120)"
    }


def test_cool_down_is_per_pool_and_ends() -> None:
    """Another pool's recent scale-up, or one 121 s ago, does not hold a node."""
    reply = scale_in(
        request(
            [node("a", pool="np-a"), node("b", pool="np-b")],
            [pool("np-a", lastScaleUpAt=ago(121)), pool("np-b", lastScaleUpAt=None)],
        )
    )
    assert removed(reply) == ["a", "b"]


# --- node health ---------------------------------------------------------------------------


def test_node_that_never_became_ready_is_removed_as_failed() -> None:
    """Not Ready since creation 700 s ago (timeout 600 s): removed first, reason says failed."""
    reply = scale_in(
        request(
            [
                node("a"),
                node(
                    "z", pod("p"), ready=False, everReady=False, createdAt=ago(700), emptySince=None
                ),
            ],
            [pool(min_size=1)],
        )
    )
    assert removed(reply) == ["z"]
    assert reply["remove"][0]["reason"] == (
        "failed: never became Ready in 700s (maxProvisionSeconds 600)"
    )
    assert reply["remove"][0]["evicts"] == ["p"]


def test_booting_node_is_not_failed_yet() -> None:
    """Not Ready for 100 s of a 600 s provisioning timeout: kept, not removed as empty."""
    reply = scale_in(request([node("a", ready=False, everReady=False, createdAt=ago(100))]))
    assert kept(reply) == {
        "a": "node is not Ready yet: created 100s ago (failed after maxProvisionSeconds 600)"
    }


def test_node_that_was_ready_and_is_not_now_stays() -> None:
    """A node that went NotReady may recover: never removed by this rule."""
    reply = scale_in(request([node("a", ready=False, createdAt=ago(3000))]))
    assert kept(reply) == {"a": "node is not Ready (it was before; kept while it may recover)"}


def test_unmanaged_node_stays() -> None:
    """A node of no managed pool is kept whatever its state."""
    reply = scale_in(request([node("a", pool=None)]))
    assert kept(reply) == {"a": "not in a managed node pool"}


# --- preference and the per-decision cap ---------------------------------------------------


def test_preference_emptiest_then_most_expensive_then_newest() -> None:
    """With room for 3 of 5 removals: empty before busy, dear before cheap, new before old."""
    nodes = [
        node("busy", pod("p", cpu="1"), pool="np-dear"),
        node("cheap", pool="np-cheap"),
        node("dear-old", pool="np-dear", createdAt="2026-11-29T03:00:00Z"),
        node("dear-new", pool="np-dear", createdAt="2026-11-29T04:30:00Z"),
        node("keeper", pool=None, cpu="16"),
    ]
    reply = scale_in(
        request(
            nodes,
            [pool("np-cheap", price=0.5), pool("np-dear", price=2.0)],
            drainNonEmpty=True,
            maxNodesPerDecision=3,
        )
    )
    assert removed(reply) == ["cheap", "dear-new", "dear-old"]
    assert kept(reply)["busy"].endswith("but maxNodesPerDecision 3 reached")


def test_cap_takes_the_first_in_preference_order() -> None:
    """maxNodesPerDecision 1 with a dear and a cheap empty node removes the dear one."""
    reply = scale_in(
        request(
            [node("a", pool="np-cheap"), node("b", pool="np-dear")],
            [pool("np-cheap", price=0.5), pool("np-dear", price=2.0)],
            maxNodesPerDecision=1,
        )
    )
    assert removed(reply) == ["b"]
    assert kept(reply) == {
        "a": "empty for 120s (scaleDownUnneededSeconds 60), but maxNodesPerDecision 1 reached"
    }


def test_max_nodes_zero_removes_nothing() -> None:
    """maxNodesPerDecision 0 turns removals off; every node is kept with a reason."""
    reply = scale_in(request([node("a"), node("b")], maxNodesPerDecision=0))
    assert removed(reply) == [] and len(reply["keep"]) == 2


def test_summary_and_pool_groups() -> None:
    """summary counts and saved price; pools group instance ids for RemoveNodePoolNodes."""
    reply = scale_in(
        request(
            [
                node("b", pool="np-b"),
                node("a1", pool="np-a"),
                node("a2", pool="np-a"),
                node("k", pool=None),
            ],
            [pool("np-a", price=1.25), pool("np-b", price=0.5)],
        )
    )
    assert removed(reply) == ["a1", "a2", "b"]
    assert reply["pools"] == [
        {
            "poolId": "np-a",
            "fromDesired": 2,
            "toDesired": 0,
            "nodes": ["a1", "a2"],
            "instanceIds": ["i-a1", "i-a2"],
        },
        {
            "poolId": "np-b",
            "fromDesired": 1,
            "toDesired": 0,
            "nodes": ["b"],
            "instanceIds": ["i-b"],
        },
    ]
    assert reply["summary"] == {"removeNodes": 3, "keepNodes": 1, "savedPerHour": 3.0}
