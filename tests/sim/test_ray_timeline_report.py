"""The Ray job's timeline and summary as text for reports."""

from __future__ import annotations

from agent.sim.report import job_text, timeline_text
from agent.sim.world.ray import JobSummary, TimelinePoint


def point(t: float, *, queued: int, running: int, done: int) -> TimelinePoint:
    return TimelinePoint(
        t=t,
        tasks_waiting=0,
        tasks_queued=queued,
        tasks_running=running,
        tasks_done=done,
        tasks_failed=0,
        pods_unscheduled=queued,
        pods_starting=0,
        pods_running=running,
        pods_terminating=0,
        replicas={"workergroup": queued + running},
    )


def test_timeline_keeps_one_row_per_interval_and_the_last_point():
    """Points closer than the interval are skipped; the final state always shows."""
    points = [point(t, queued=15 - t // 10, running=t // 10, done=0) for t in range(0, 100, 5)]
    points.append(point(101, queued=0, running=0, done=15))
    lines = timeline_text(points, every_seconds=30).splitlines()
    assert lines[0].split()[:4] == ["t(s)", "queued", "running", "done"]
    assert [line.split()[0] for line in lines[1:]] == ["0", "30", "60", "90", "101"]
    assert lines[-1].split()[3] == "15"
    # the last column: the RayCluster's replicas over the worker groups
    assert lines[0].split()[-1] == "wanted"
    assert [line.split()[-1] for line in lines[1:]] == ["15", "15", "15", "15", "0"]


def test_job_text_says_done_failed_makespan_and_waits():
    """The one-line summary carries the numbers a comparison needs."""
    text = job_text(
        JobSummary(
            tasks=15,
            done=15,
            failed=0,
            makespan_seconds=231.4,
            mean_wait_seconds=61.2,
            max_wait_seconds=98.0,
            pods_created=15,
            pods_deleted=15,
        )
    )
    assert text.startswith("tasks 15/15 done, 0 failed; makespan 231s")
    assert "wait mean 61s max 98s" in text
