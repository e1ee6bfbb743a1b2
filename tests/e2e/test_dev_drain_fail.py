"""`python -m agent dev --scenario drain-fail --json`: a PodDisruptionBudget blocks the drain of
a node the agent chose; ACK's RemoveNodePoolNodes fails after the pool's drain timeout; the agent
uncordons the node, records a ScaleDownFailed Event, backs off and removes it later; the Ray job
completes with no task lost. Read from the run's JSON summary and its closing lines."""

from __future__ import annotations

import pytest

from agent.dev.summary import CloudFacts, RunRecord, summarize
from agent.sim.scenario import load_scenario
from tests.support.dev_process import SPEED, DevResult, run_dev

SCENARIO = load_scenario("drain-fail")


@pytest.fixture(scope="module")
def drain_fail() -> DevResult:
    return run_dev("--scenario", "drain-fail", "--json", "--speed", SPEED)


def test_the_failed_drain_is_undone_and_retried_and_the_cluster_ends_at_rest(drain_fail):
    """Exit 0 at rest: at least one removal failed, each such node was uncordoned and then
    removed after all, no node is left cordoned, every node added was given back."""
    result = drain_fail
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["scenario"] == "drain-fail"
    scale_down = summary["scaleDown"]
    assert scale_down["failed"] >= 1
    assert scale_down["uncordonedAfterFailure"] >= 1
    assert scale_down["failedThenRemoved"] == scale_down["uncordonedAfterFailure"]
    assert scale_down["cordonedAtEnd"] == 0
    assert summary["nodesAdded"] == summary["nodesRemoved"] > 0
    assert all(p == {"desired": 0, "nodes": 0} for p in summary["poolsAtEnd"].values())
    assert summary["ending"] == "rest"
    assert summary["errors"] == 0
    assert "Traceback" not in result.stderr


def test_no_ray_task_is_lost(drain_fail):
    """Every task of the job is done, none failed, every worker reached Running."""
    summary = drain_fail.summary()
    tasks = SCENARIO.task_count
    assert f"Ray job: {tasks}/{tasks} tasks done, 0 failed" in drain_fail.stderr
    assert summary["pods"] == summary["running"] == tasks


def test_the_summary_counts_scale_down_failures_per_node():
    """The record's bookkeeping: a ScaleDownFailed Event after the node was uncordoned, the
    node deleted later; a node that stays cordoned is counted at the end."""
    record = RunRecord(namespace="default", eci_node=None, pool_label="pool")

    def node(name: str, *, cordoned: bool) -> dict:
        return {"metadata": {"name": name, "labels": {"pool": "np"}},
                "spec": {"unschedulable": cordoned}}  # fmt: skip

    failed = {"reason": "ScaleDownFailed", "involvedObject": {"kind": "Node", "name": "n-1"}}
    for kind, resource, obj in [
        ("ADDED", "nodes", node("n-1", cordoned=False)),
        ("ADDED", "nodes", node("n-2", cordoned=False)),
        ("MODIFIED", "nodes", node("n-1", cordoned=True)),
        ("MODIFIED", "nodes", node("n-1", cordoned=False)),
        ("ADDED", "events", failed),
        ("MODIFIED", "nodes", node("n-2", cordoned=True)),
        ("DELETED", "nodes", node("n-1", cordoned=True)),
    ]:
        record.observe(kind, resource, obj, t=0, real=0)
    facts = CloudFacts(scale_writes=(), idle_node_seconds=0, cost=0, errors_by_code={})
    assert summarize(record, scenario="s", facts=facts)["scaleDown"] == {
        "failed": 1,
        "uncordonedAfterFailure": 1,
        "failedThenRemoved": 1,
        "cordonedAtEnd": 1,
    }
