"""The RayCluster's wanted replicas beside the worker pods: in a run record's samples, on the
live view's status line, and as a line on the report's pods panel."""

from __future__ import annotations

from agent.dev.live_view import status_text
from agent.dev.report import pod_series
from agent.dev.summary import RunRecord, Sample


def sample(t: float, *, pending: int, running: int, replicas: dict[str, int]) -> Sample:
    return Sample(
        t=t,
        pending=pending,
        starting=0,
        running=running,
        eci=0,
        nodes=(),
        replicas=tuple(sorted(replicas.items())),
    )


def test_the_status_line_says_how_many_workers_the_raycluster_wants():
    one = sample(0, pending=13, running=2, replicas={"workergroup": 15})
    line = status_text(one, pools={}, tasks_done=0, task_count=15)
    assert line.startswith("workers 15 wanted: 13 pending, 0 starting, 2 running |")
    several = sample(0, pending=3, running=2, replicas={"cpu": 4, "gpu": 2})
    line = status_text(several, pools={}, tasks_done=0, task_count=5)
    assert line.startswith("workers 6 wanted (cpu 4, gpu 2): 3 pending,")
    before = sample(0, pending=0, running=0, replicas={})
    assert status_text(before, pools={}, tasks_done=0, task_count=5).startswith("workers 0 pending")


def test_a_change_of_replicas_alone_is_a_new_sample():
    """Ray asking for more workers is a moment of the timeline, before any pod exists."""
    record = RunRecord(namespace="default", eci_node=None, pool_label="p")
    record.sample(0.0, replicas={"workergroup": 0})
    record.sample(5.0, replicas={"workergroup": 15})
    record.sample(6.0, replicas={"workergroup": 15})
    assert [(s.t, s.workers_wanted) for s in record.samples] == [(0.0, 0), (5.0, 15)]


def test_the_pods_panel_draws_the_wanted_replicas():
    samples = [
        sample(0, pending=0, running=0, replicas={"workergroup": 0}),
        sample(5, pending=15, running=0, replicas={"workergroup": 15}),
        sample(90, pending=0, running=15, replicas={"workergroup": 15}),
    ]
    series = {s.name: s for s in pod_series(samples)}
    assert series["wanted (RayCluster replicas)"].points == [(0, 0), (5, 15), (90, 15)]
    no_raycluster = [sample(0, pending=1, running=0, replicas={})]
    assert "wanted (RayCluster replicas)" not in {s.name for s in pod_series(no_raycluster)}
