"""The dev run's bookkeeping (pure): what the summary counts from the cluster's object changes."""

from __future__ import annotations

from agent.actuate.actuation import PLACED_LABEL
from agent.dev.summary import CloudFacts, RunRecord, summarize

POOL_LABEL = "alibabacloud.com/nodepool-id"


def worker(
    name: str,
    *,
    node: str = "",
    phase: str = "Pending",
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
) -> dict:
    conditions = (
        [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
        if unschedulable
        else []
    )
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"ray.io/node-type": "worker", **(labels or {})},
        },
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions},
    }


def node(name: str, *, pool: str, ready: bool) -> dict:
    return {
        "metadata": {"name": name, "labels": {POOL_LABEL: pool}},
        "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def served_event(pod: str, reason: str = "TriggeredScaleUp") -> dict:
    return {
        "reason": reason,
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": pod},
    }


def facts(writes: tuple[float, ...] = ()) -> CloudFacts:
    return CloudFacts(
        scale_write_real_times=writes, idle_node_seconds=12.0, cost=0.5, decisions=1, errors=0
    )


def new_record() -> RunRecord:
    return RunRecord(namespace="default", eci_node="virtual-kubelet-z", pool_label=POOL_LABEL)


def test_reaction_runs_from_unschedulable_to_the_scale_write_serving_the_pod():
    """A pool-served pod's reaction ends at the last scale write before the agent's event."""
    record = new_record()
    record.observe("ADDED", "pods", worker("w1"), t=0, real=9.0)
    record.observe("MODIFIED", "pods", worker("w1", unschedulable=True), t=1, real=10.0)
    record.observe("ADDED", "events", served_event("w1"), t=2, real=10.5)
    assert [round(r, 3) for r in record.reaction_seconds([9.5, 10.3])] == [0.3]
    summary = summarize(record, scenario="s", facts=facts((10.3,)))
    assert summary["reactionMs"] == {"p50": 300.0, "p99": 300.0}


def test_an_eci_patch_ends_the_reaction_and_the_pod_counts_as_an_eci_pod():
    """The agent's ECI label is the write; a pod bound to the virtual node is an ECI pod."""
    record = new_record()
    record.observe("MODIFIED", "pods", worker("w1", unschedulable=True), t=1, real=10.0)
    record.observe("MODIFIED", "pods", worker("w1", labels={PLACED_LABEL: "eci"}), t=2, real=10.2)
    record.observe(
        "MODIFIED",
        "pods",
        worker("w1", node="virtual-kubelet-z", phase="Running", labels={PLACED_LABEL: "eci"}),
        t=30,
        real=10.8,
    )
    assert [round(r, 3) for r in record.reaction_seconds([])] == [0.2]
    summary = summarize(record, scenario="s", facts=facts())
    assert (summary["eciPods"], summary["running"], summary["pods"]) == (1, 1, 1)
    assert summary["timeToAllRunningSeconds"] == 29.0


def test_nodes_added_and_removed_per_pool_and_the_timeline_keeps_changes_only():
    """Pool nodes are counted once when they appear and once when they go; samples dedupe."""
    record = new_record()
    record.observe("ADDED", "nodes", node("n1", pool="np", ready=False), t=0, real=0)
    first = record.sample(1.0)
    record.sample(2.0)
    record.observe("MODIFIED", "nodes", node("n1", pool="np", ready=True), t=3, real=0)
    record.observe("ADDED", "nodes", {"metadata": {"name": "system", "labels": {}}}, t=3, real=0)
    record.sample(3.0)
    record.observe("DELETED", "nodes", node("n1", pool="np", ready=True), t=4, real=0)
    assert first.nodes == (("np", 1, 0),)
    assert [s.t for s in record.samples] == [1.0, 3.0]
    assert record.samples[-1].nodes == (("np", 0, 1),)
    assert (record.nodes_added, record.nodes_removed) == (1, 1)


def test_a_worker_that_never_ran_leaves_time_to_all_running_unset():
    """timeToAllRunningSeconds only when every created worker reached Running."""
    record = new_record()
    record.observe("ADDED", "pods", worker("w1", node="n", phase="Running"), t=5, real=0)
    record.observe("ADDED", "pods", worker("w2", unschedulable=True), t=6, real=0)
    record.mark_unplaceable(["w2"])
    summary = summarize(record, scenario="s", facts=facts())
    assert summary["timeToAllRunningSeconds"] is None
    assert (summary["pods"], summary["running"], summary["unplaceable"]) == (2, 1, 1)
