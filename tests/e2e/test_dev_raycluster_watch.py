"""`python -m agent dev` with and without the agent's RayCluster watch: the banner says which,
the agent's log shows whether it watched RayClusters, and the summary says how long after Ray's
replicas raise the first node was asked for. The Ray job starts only once the agent watches, so
that time, and every reaction, runs from the job's start and not from before the agent was up."""

from __future__ import annotations

from pathlib import Path

from tests.support.dev_process import SPEED, run_dev


def watched_rayclusters(run_dir: Path) -> bool:
    """What the agent's start line in its log says of its RayCluster watch."""
    for line in (run_dir / "agent.log").read_text(encoding="utf-8").splitlines():
        if "agent started" in line:
            return "raycluster_watch=True" in line
    raise AssertionError("no 'agent started' line in agent.log")


def first_list(run_dir: Path) -> str:
    """The agent's "view synced" line: what its first lists found."""
    for line in (run_dir / "agent.log").read_text(encoding="utf-8").splitlines():
        if "view synced" in line:
            return line
    raise AssertionError("no 'view synced' line in agent.log")


def test_the_watch_is_on_by_default_and_the_first_node_is_timed(tmp_path: Path) -> None:
    result = run_dev("--json", "--speed", SPEED, "--run-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RayCluster watch on" in result.stderr
    assert watched_rayclusters(tmp_path)
    # the job was held until the agent had listed: no worker pod existed yet
    assert "pending=0" in first_list(tmp_path)
    first = result.summary()["firstNodeRequestedSeconds"]
    assert first is not None and first >= 0


def test_no_raycluster_watch_runs_on_pending_pods_alone(tmp_path: Path) -> None:
    result = run_dev(
        "--json", "--speed", SPEED, "--run-dir", str(tmp_path), "--no-raycluster-watch"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RayCluster watch off" in result.stderr
    assert not watched_rayclusters(tmp_path)
    summary = result.summary()
    assert summary["running"] == summary["pods"] == 15
    assert summary["firstNodeRequestedSeconds"] is not None
