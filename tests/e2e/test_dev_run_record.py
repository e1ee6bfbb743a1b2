"""The dev run's bookkeeping (pure): what the summary counts from the cluster's object changes."""

from __future__ import annotations

from agent.actuate.actuation import PLACED_LABEL
from agent.dev.closing import closing_lines
from agent.dev.summary import (
    FOLLOW_UP,
    SCALE_IN,
    SCALE_OUT,
    CloudFacts,
    RunRecord,
    ScaleWrite,
    error_codes,
    fault_seen,
    summarize,
)

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


def served_event(pod: str, reason: str = "TriggeredScaleUp", pool: str = "np") -> dict:
    message = f"pod triggered scale-up: [{{{pool} 0->2 (max: 4)}}]"
    return {
        "reason": reason,
        "message": message if reason == "TriggeredScaleUp" else "pod placed on ECI",
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": pod},
    }


def writes(*at: float, pool: str = "np") -> tuple[ScaleWrite, ...]:
    return tuple(ScaleWrite(real=t, pool=pool) for t in at)


def facts(
    scale_writes: tuple[ScaleWrite, ...] = (), errors: dict[str, int] | None = None
) -> CloudFacts:
    return CloudFacts(
        scale_writes=scale_writes, idle_node_seconds=12.0, cost=0.5, errors_by_code=errors or {}
    )


def new_record() -> RunRecord:
    return RunRecord(namespace="default", eci_node="virtual-kubelet-z", pool_label=POOL_LABEL)


def test_reaction_runs_from_unschedulable_to_the_scale_write_serving_the_pod():
    """A pool-served pod's reaction ends at the last scale write before the agent's event."""
    record = new_record()
    record.observe("ADDED", "pods", worker("w1"), t=0, real=9.0)
    record.observe("MODIFIED", "pods", worker("w1", unschedulable=True), t=1, real=10.0)
    record.observe("ADDED", "events", served_event("w1"), t=2, real=10.5)
    assert [round(r, 3) for r in record.reaction_seconds(writes(9.5, 10.3))] == [0.3]
    summary = summarize(record, scenario="s", facts=facts(writes(10.3)))
    assert summary["reactionMs"] == {"p50": 300.0, "p99": 300.0, "pods": 1}


def test_a_scale_up_by_acks_own_autoscaler_is_not_the_agents_and_is_listed_apart():
    """cluster-autoscaler's TriggeredScaleUp (ACK's autoscaler, not the agent) serves no pod in
    the agent's reaction times; its changes are counted under ackAutoscaler."""
    record = new_record()
    record.observe("MODIFIED", "pods", worker("w1", unschedulable=True), t=1, real=10.0)
    by_ack = {**served_event("w1"), "source": {"component": "cluster-autoscaler"}}
    record.observe("ADDED", "events", by_ack, t=30, real=10.3)
    record.ack_changed(t=30, kind="scale-up", text="np 0→2 (scale-up for 1 unschedulable pods)")
    assert record.reaction_seconds(writes(10.1)) == []
    summary = summarize(record, scenario="s", facts=facts(writes(10.1)))
    assert summary["ackAutoscaler"] == {
        "scaleUps": 1,
        "scaleDowns": 0,
        "changes": ["t+30s np 0→2 (scale-up for 1 unschedulable pods)"],
    }
    assert "ACK autoscaler: t+30s np 0→2" in "\n".join(closing_lines(summary, tasks="1/1"))


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


def test_each_pod_is_timed_to_its_own_write_not_to_another_pools_or_an_eci_neighbours():
    """Pods pending together but served by two pools and ECI get three different reactions: a
    pool write in between does not end the reaction of a pod served later by ECI."""
    record = new_record()
    for name in ("a", "b", "c"):
        record.observe("MODIFIED", "pods", worker(name, unschedulable=True), t=1, real=10.0)
    record.observe("ADDED", "events", served_event("a", pool="np-1"), t=2, real=10.5)
    record.observe("ADDED", "events", served_event("b", pool="np-2"), t=2, real=10.9)
    record.observe("MODIFIED", "pods", worker("c", labels={PLACED_LABEL: "eci"}), t=3, real=11.5)
    scale_writes = (*writes(10.2, pool="np-1"), *writes(10.7, pool="np-2"))
    assert sorted(round(r, 3) for r in record.reaction_seconds(scale_writes)) == [0.2, 0.7, 1.5]
    summary = summarize(record, scenario="s", facts=facts(scale_writes))
    assert summary["reactionMs"]["p50"] == 700.0 and summary["reactionMs"]["p99"] > 1400


def test_unplaceable_counts_only_pods_that_ended_so_and_the_rest_as_transient():
    """A pod decided unplaceable, then served and Running, is transient; one still unbound at
    the end is unplaceable; one whose last word was a placement is neither."""
    record = new_record()
    for name in ("late", "stuck", "placed"):
        record.observe("ADDED", "pods", worker(name, unschedulable=True), t=1, real=1)
    record.mark_unplaceable(["late", "stuck", "placed"])
    record.observe("ADDED", "events", served_event("late"), t=5, real=5)
    record.observe("MODIFIED", "pods", worker("late", node="n", phase="Running"), t=9, real=9)
    record.observe("ADDED", "events", served_event("placed"), t=5, real=5)
    summary = summarize(record, scenario="s", facts=facts())
    assert (summary["unplaceable"], summary["unplaceableTransient"]) == (1, 2)
    record.observe("DELETED", "pods", worker("stuck"), t=10, real=10)  # gone without running
    assert record.ended_unplaceable() == {"stuck"}


def test_decisions_are_counted_by_kind_one_per_decision_line():
    """Scale-out, follow-up and scale-in rounds all count; the total matches the lines shown."""
    record = new_record()
    for kind in (SCALE_OUT, FOLLOW_UP, FOLLOW_UP, SCALE_IN, SCALE_IN):
        record.decided(t=1, outcome="x", pods=1, text="x", kind=kind)
    summary = summarize(record, scenario="s", facts=facts())
    assert summary["decisions"] == 5
    assert summary["decisionsByKind"] == {"scaleOut": 1, "followUp": 2, "scaleIn": 2}


def test_cloud_refusals_count_as_errors_by_code_once_each():
    """NoStock from a failed scale-out task, each throttled CS attempt and each decider failure
    count by code; an "error" of source cs repeats a counted "cs call failed" and is skipped."""
    events = [
        {"event": "scale-out failed", "pool": "np", "error": "OperationDenied.NoStock: sold out"},
        {"event": "cs call retried", "action": "ModifyClusterNodePool", "code": "Throttling.User"},
        {"event": "cs call failed", "action": "DescribeClusterNodePools", "code": "InternalError"},
        {"event": "error", "source": "cs", "message": "InternalError (500): boom"},
        {"event": "decider retried", "code": "ServiceUnavailable"},
        {"event": "error", "source": "decider", "message": "Timeout: no answer in 5 s"},
        {"event": "error", "source": "kubernetes", "message": "ray/w1: 500 boom"},
        {"event": "decision round", "outcome": "scaled"},
    ]
    codes = [code for event in events for code in error_codes(event)]
    assert codes == [
        "OperationDenied.NoStock",
        "Throttling.User",
        "InternalError",
        "ServiceUnavailable",
        "Timeout",
        "kubernetes",
    ]
    summary = summarize(new_record(), scenario="s", facts=facts(errors={"Throttling.User": 2}))
    assert (summary["errors"], summary["errorsByCode"]) == (2, {"Throttling.User": 2})


def test_faults_are_counted_as_injected_and_as_the_agent_met_them():
    """The agent's log events map to the fault kinds it met; the summary puts them beside what
    was injected, and `survived` only when the run ended at rest with every worker run."""
    events = [
        {"event": "cs call retried", "code": "Throttling.User", "status": 400},
        {"event": "cs call failed", "code": "ServiceUnavailable", "status": 503},
        {"event": "cs call retried", "code": "InvalidParameter", "status": 400},
        {"event": "decider retried", "code": "ServiceUnavailable"},
        {"event": "watch restart", "reason": "eof"},
        {"event": "watch restart", "reason": "expired"},
        {"event": "watch restart", "reason": "timeout"},
        {"event": "decision round"},
    ]
    assert [fault_seen(e) for e in events] == [
        "cs_throttled",
        "cs_5xx",
        None,
        "fc_errors",
        "watch_cuts",
        "gone_410",
        None,
        None,
    ]
    record = new_record()
    record.observe("ADDED", "pods", worker("w1", node="n1", phase="Running"), t=1, real=1.0)
    injected = {"cs_throttled": 3, "gone_410": 1}
    for ending, survived in (("rest", True), ("time-limit", False)):
        base = facts()
        summary = summarize(
            record,
            scenario="s",
            facts=CloudFacts(
                scale_writes=(),
                idle_node_seconds=base.idle_node_seconds,
                cost=base.cost,
                errors_by_code={},
                ending=ending,
                faults_injected=injected,
                faults_seen={"cs_throttled": 2},
            ),
        )
        faults = summary["faults"]
        assert faults["injected"]["cs_throttled"] == 3 and faults["injected"]["fc_timeouts"] == 0
        assert (
            faults["seenByAgent"]["cs_throttled"] == 2
            and "fc_timeouts" not in faults["seenByAgent"]
        )
        assert (summary["ending"], faults["survived"]) == (ending, survived)


def test_closing_lines_name_a_pool_left_wanting_nodes_and_the_faults():
    """A pool whose desired size is above its nodes at the end is named; the faults injected and
    met get one line; neither appears when there is nothing to say."""
    record = new_record()
    record.observe("ADDED", "pods", worker("w1", node="n1", phase="Running"), t=1, real=1.0)
    base = facts()

    def lines(pools: dict, injected: dict) -> list[str]:
        cloud = CloudFacts(
            scale_writes=(),
            idle_node_seconds=base.idle_node_seconds,
            cost=base.cost,
            errors_by_code={},
            ending="rest",
            pools=pools,
            faults_injected=injected,
            faults_seen={"gone_410": 2},
        )
        return closing_lines(summarize(record, scenario="s", facts=cloud), tasks="1/1 tasks done")

    quiet = lines({"np-a": (0, 0)}, {})
    assert not any("still wants" in line or "faults" in line for line in quiet)
    loud = lines({"np-a": (13, 0), "np-b": (2, 2)}, {"gone_410": 3, "cs_5xx": 0})
    assert "pool np-a still wants 13 nodes and has 0" in loud
    assert not any("np-b" in line for line in loud)
    assert loud[-1] == "faults injected: 410 Expired 3; met by the agent: 410 Expired 2; survived"
