"""Draining under scale-in/v1: a node goes only if all its pods fit on the nodes that stay."""

from __future__ import annotations

from functions.scalein.decision import scale_in
from tests.support.scale_in_requests import daemon, kept, node, pod, pool, removed, request


def test_pods_fit_on_a_remaining_node() -> None:
    """1 cpu of pods moves onto an unmanaged node with room; the evicted uids are listed."""
    reply = scale_in(
        request(
            [node("a", pod("p1", cpu="500m"), pod("p2", cpu="500m")), node("k", pool=None)],
            drainNonEmpty=True,
        )
    )
    assert removed(reply) == ["a"]
    assert reply["remove"][0]["evicts"] == ["p1", "p2"]
    assert reply["remove"][0]["reason"] == (
        "utilization 25% below 50% for 120s; 2 pod(s) fit on other nodes"
    )


def test_pods_that_fit_nowhere_keep_the_node() -> None:
    """The only other node is nearly full: the node stays and the reason names the pod."""
    full = node("k", pod("big", cpu="3500m", owner="ReplicaSet"), pool=None)
    reply = scale_in(request([node("a", pod("p", cpu="1")), full], drainNonEmpty=True))
    assert kept(reply)["a"] == (
        "pods would not fit elsewhere: ray/rc-worker-p finds no node with enough cpu free"
    )


def test_capacity_is_consumed_across_drained_nodes() -> None:
    """Room for 1.5 cpu elsewhere: of two nodes with 1 cpu each, only one is drained."""
    reply = scale_in(
        request(
            [
                node("a", pod("p", cpu="1")),
                node("b", pod("q", cpu="1")),
                node("k", pod("big", cpu="2500m", owner="ReplicaSet"), pool=None),
            ],
            drainNonEmpty=True,
        )
    )
    assert removed(reply) == ["a"]
    assert kept(reply)["b"].startswith("pods would not fit elsewhere:")


def test_all_or_nothing_gives_back_a_failed_attempt() -> None:
    """A node whose second pod fits nowhere frees what its first pod took, for the next node."""
    reply = scale_in(
        request(
            [
                # 'a' (19%) is tried before 'b' (25%); its 500m pod takes half of k's free 1 cpu first.
                node(
                    "a", pod("a1", cpu="500m"), pod("a2", cpu="250m", nodeSelector={"gpu": "yes"})
                ),
                node("b", pod("b1", cpu="1")),
                node("k", pod("big", cpu="3", owner="ReplicaSet"), pool=None),
            ],
            drainNonEmpty=True,
        )
    )
    assert removed(reply) == ["b"]
    assert kept(reply)["a"] == (
        "pods would not fit elsewhere: ray/rc-worker-a2 matches no other Ready schedulable node "
        "(nodeSelector, required affinity or taints)"
    )


def test_pod_slots_are_capacity() -> None:
    """A remaining node with one free pod slot takes one pod, not two."""
    slots = node("k", pool=None)
    slots["allocatable"]["pods"] = "1"
    reply = scale_in(
        request(
            [node("a", pod("p1", cpu="100m"), pod("p2", cpu="100m")), slots], drainNonEmpty=True
        )
    )
    assert kept(reply)["a"] == (
        "pods would not fit elsewhere: ray/rc-worker-p2 finds no node with enough pods free"
    )


def test_daemonset_pods_use_room_on_the_destination() -> None:
    """The destination's own DaemonSet pods take space: 3.9 cpu free is not enough for 4."""
    reply = scale_in(
        request(
            [
                node("a", pod("p", cpu="4"), cpu="16"),
                node("k", daemon("d"), pool=None, cpu="4"),
            ],
            drainNonEmpty=True,
        )
    )
    assert kept(reply)["a"].endswith("finds no node with enough cpu free")


def test_selector_affinity_and_taints_decide_the_destination() -> None:
    """Pods go only where nodeSelector, required affinity and taints allow."""
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
                ]
            }
        }
    }
    gpu_taint = [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
    reply = scale_in(
        request(
            [
                node("sel", pod("s", nodeSelector={"tier": "x"})),
                node("aff", pod("f", affinity=affinity)),
                node("tol", pod("t", tolerations=[{"key": "gpu", "operator": "Exists"}])),
                node("none", pod("n")),
                node(
                    "k1", pool=None, labels={"tier": "x", "zone": "a"}, taints=gpu_taint, cpu="32"
                ),
                node("k2", pool=None, labels={"zone": "a"}, cpu="32"),
            ],
            drainNonEmpty=True,
        )
    )
    # sel: k1 is tainted and 's' does not tolerate it; aff: no node in zone b;
    # tol: tolerates the taint (k1) or goes to k2; none: k2.
    assert sorted(removed(reply)) == ["none", "tol"]
    assert "rc-worker-s matches no other" in kept(reply)["sel"]
    assert "rc-worker-f matches no other" in kept(reply)["aff"]


def test_cordoned_and_not_ready_nodes_take_no_pods() -> None:
    """Only Ready, schedulable nodes that stay are destinations."""
    reply = scale_in(
        request(
            [
                node("a", pod("p")),
                node(
                    "cordoned",
                    pod("c", cpu="100m", owner="ReplicaSet", rayNodeType=None),
                    pool=None,
                    unschedulable=True,
                ),
                node("down", pool=None, ready=False),
            ],
            drainNonEmpty=True,
        )
    )
    assert kept(reply)["a"].startswith("pods would not fit elsewhere:")


def test_cordoned_node_may_itself_be_removed() -> None:
    """A node the agent cordoned in an earlier cycle is still a removal candidate."""
    reply = scale_in(request([node("a", unschedulable=True)]))
    assert removed(reply) == ["a"]


def test_pods_never_land_on_a_node_that_is_leaving() -> None:
    """An empty node chosen for removal takes no pods; the drained node then has nowhere."""
    reply = scale_in(request([node("a", pod("p")), node("empty")], drainNonEmpty=True))
    assert removed(reply) == ["empty"]
    assert kept(reply)["a"].startswith("pods would not fit elsewhere:")


def test_a_node_that_takes_moved_pods_stays() -> None:
    """When pods must land on another candidate, that candidate is kept in this decision."""
    reply = scale_in(
        request(
            [
                node("a", pod("p", cpu="500m")),
                node("b", pod("q", cpu="1")),
            ],
            drainNonEmpty=True,
        )
    )
    assert removed(reply) == ["a"]
    assert kept(reply) == {"b": "takes pods moved from a in this decision"}


def test_draining_respects_min_before_simulating() -> None:
    """At min, a drainable node stays for the min, not for lack of room."""
    reply = scale_in(
        request(
            [node("a", pod("p", cpu="500m")), node("k", pool=None)],
            [pool(min_size=1)],
            drainNonEmpty=True,
        )
    )
    assert kept(reply)["a"] == "pool np-cpu at min 1 (1 nodes, 0 leaving in this decision)"
