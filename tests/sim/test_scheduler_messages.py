"""The scheduler's pure pass: which node it picks, and kube-scheduler's words when none fits."""

from __future__ import annotations

from typing import Any

from agent.sim.world.scheduler import (
    NodeInfo,
    node_info,
    plan,
    pod_info,
)
from tests.support.builders import build_test_node, build_test_pod

ECI_TAINT = {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}


def node(name: str, **fields: Any) -> NodeInfo:
    """The scheduler's view of a raw node (tests.support.builders.build_test_node fields)."""
    return node_info(build_test_node(name, **fields))


def pod(name: str, *, cpu: str = "1", memory: str = "1Gi", **spec: Any) -> Any:
    return pod_info(
        build_test_pod(
            name,
            namespace="ray",
            created=f"t-{name}",
            container="c",
            image=None,
            cpu=cpu,
            memory=memory,
            **spec,
        )
    )


def run(pods: list[Any], nodes: list[NodeInfo], used: dict[str, dict[str, int]] | None = None):
    placements = plan(pods, {n.name: n for n in nodes}, used if used is not None else {})
    return {p.key[1]: p.node or p.message for p in placements}


def test_insufficient_cpu_everywhere():
    """Every node short of cpu: one histogram entry, and preemption finds no victims."""
    result = run([pod("p", cpu="8")], [node("a"), node("b"), node("c")])
    assert result["p"] == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )


def test_untolerated_taint_and_insufficient_cpu_mix():
    """A tainted ECI node and two full nodes: reasons sorted as kube-scheduler sorts them."""
    nodes = [node("a", cpu="1"), node("b", cpu="1"), node("vk", cpu="1000", taints=[ECI_TAINT])]
    result = run([pod("p", cpu="2")], nodes)
    assert result["p"] == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{virtual-kubelet.io/provider: alibabacloud}, 2 Insufficient cpu. preemption: 0/3 nodes "
        "are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims "
        "found for incoming pod."
    )


def test_node_selector_mismatch():
    """A nodeSelector no node carries is an affinity/selector refusal, not helped by preemption."""
    result = run([pod("p", nodeSelector={"gpu": "a100"})], [node("a"), node("b")])
    assert result["p"] == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )


def test_required_affinity_mismatch_uses_the_same_reason():
    """Required node affinity refusals read like nodeSelector ones (one NodeAffinity plugin)."""
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}
                ]
            }
        }
    }
    result = run([pod("p", affinity=affinity)], [node("a", labels={"zone": "z2"})])
    assert result["p"].startswith(
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    )


def test_not_ready_node_blocks_with_its_taint():
    """A NotReady node refuses through the not-ready taint, with an empty value."""
    result = run([pod("p")], [node("a", ready=False)])
    assert result["p"] == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )


def test_taint_is_checked_before_resources():
    """A node refused by its taint is not also counted as short of cpu (filters stop early)."""
    result = run([pod("p", cpu="8")], [node("vk", taints=[ECI_TAINT])])
    assert "Insufficient" not in result["p"]


def test_one_node_can_lack_several_resources():
    """A node short of cpu and memory contributes to both entries; pods as 'Too many pods'."""
    result = run([pod("p", cpu="8", memory="64Gi")], [node("a"), node("b", pods="0")])
    assert result["p"] == (
        "0/2 nodes are available: 1 Too many pods, 2 Insufficient cpu, 2 Insufficient memory. "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    )


def test_cordoned_node_is_unschedulable():
    """spec.unschedulable refuses before anything else."""
    result = run([pod("p")], [node("a", unschedulable=True, taints=[ECI_TAINT])])
    assert result["p"].startswith("0/1 nodes are available: 1 node(s) were unschedulable.")


def test_no_nodes_at_all():
    """With no nodes kube-scheduler says so plainly."""
    assert run([pod("p")], []) == {"p": "no nodes available to schedule pods"}


def test_toleration_lets_a_pod_onto_a_tainted_node():
    """The matching toleration admits the pod to the ECI node."""
    tolerations = [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]
    result = run(
        [pod("p", cpu="8", tolerations=tolerations)],
        [node("a"), node("vk", cpu="1000", taints=[ECI_TAINT])],
    )
    assert result == {"p": "vk"}


def test_least_allocated_node_wins():
    """Of two fitting nodes the emptier one gets the pod."""
    used = {"a": {"cpu": 3000, "memory": 0, "pods": 1000}}
    assert run([pod("p")], [node("a"), node("b")], used) == {"p": "b"}


def test_ties_break_by_name_and_identical_pods_spread():
    """Equal nodes: the first by name; the next identical pod goes to the now-emptier node."""
    result = run([pod("p1"), pod("p2"), pod("p3")], [node("b"), node("a")])
    assert result == {"p1": "a", "p2": "b", "p3": "a"}


def test_bound_pods_count_against_the_node():
    """Pods placed earlier in the same pass fill the node; the overflow gets the cpu message."""
    result = run([pod(f"p{i}") for i in range(5)], [node("a")])
    assert [result[f"p{i}"] for i in range(4)] == ["a"] * 4
    assert result["p4"].startswith("0/1 nodes are available: 1 Insufficient cpu.")


def test_init_container_larger_than_containers_sets_the_request():
    """The effective request is the largest init container when it exceeds the containers' sum."""
    big_init = pod_info(
        {
            "metadata": {"namespace": "ray", "name": "p"},
            "spec": {
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "6"}}}],
            },
        }
    )
    assert big_init.requests["cpu"] == 6000
    assert run([big_init], [node("a")])["p"].startswith(
        "0/1 nodes are available: 1 Insufficient cpu."
    )


def test_queue_order_is_priority_then_age():
    """A higher-priority pod takes the last slot even if it came later."""
    late_important = pod("z", priority=100)
    result = run([pod("a"), late_important], [node("n", cpu="1")])
    assert result["z"] == "n"
    assert result["a"].startswith("0/1 nodes are available: 1 Insufficient cpu.")


def test_a_large_burst_is_decided_in_one_pass():
    """1,000 identical pods over 50 nodes: each node takes its share, the rest wait with one message."""
    nodes = [node(f"n{i:02d}", cpu="4") for i in range(50)]
    result = run([pod(f"p{i:04d}") for i in range(1000)], nodes)
    bound = [v for v in result.values() if v.startswith("n")]
    waiting = {v for v in result.values() if not v.startswith("n")}
    assert len(bound) == 200
    assert {bound.count(f"n{i:02d}") for i in range(50)} == {4}
    assert waiting == {
        "0/50 nodes are available: 50 Insufficient cpu. preemption: 0/50 nodes are available: "
        "50 No preemption victims found for incoming pod."
    }
