"""seed-companion, the ACK walkthrough on a pool with ACK node autoscaling on, run as a user runs
it: `python -m agent dev --scenario seed-companion --json`, with the agent and with --no-agent
(the simulated world alone: ACK's own autoscaler stand-in serves the pods). One run each, shared
by the module's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.sim.scenario import load_scenario
from tests.support.dev_process import SPEED, DevResult, run_dev

SCENARIO = "seed-companion"
POOL = "np-default"


def finished(result: DevResult) -> dict[str, Any]:
    """The summary of a run that ended at rest (exit 0), every task done, every worker Running,
    the pool given back to 0 by ACK's autoscaler, no CS write."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    tasks = load_scenario(SCENARIO).task_count
    assert f"Ray job: {tasks}/{tasks} tasks done, 0 failed" in result.stderr
    summary = result.summary()
    assert summary["ending"] == "rest"
    assert summary["running"] == summary["pods"] == tasks
    assert summary["timeToAllRunningSeconds"] is not None
    assert summary["poolsAtEnd"] == {POOL: {"desired": 0, "nodes": 0}}
    assert summary["agentCsWrites"] == summary["scaleWrites"] == 0
    return summary


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("seed-companion")


@pytest.fixture(scope="module")
def without_agent(report_dir: Path) -> DevResult:
    report = report_dir / "no-agent.html"
    return run_dev(
        "--scenario", SCENARIO, "--no-agent", "--json", "--speed", SPEED, "--report", str(report)
    )


@pytest.fixture(scope="module")
def with_agent() -> DevResult:
    return run_dev("--scenario", SCENARIO, "--json", "--speed", SPEED)


def test_without_the_agent_acks_autoscaler_alone_serves_every_worker(without_agent):
    """The walkthrough as documented: the stand-in raises the pool at a scan, the nodes boot,
    every worker runs on them (none on ECI: nobody gives them its toleration), and the empty
    nodes go after the unneeded time; no decision, no CS write."""
    summary = finished(without_agent)
    assert summary["agent"] is False
    assert summary["decisions"] == 0 and summary["eciPods"] == 0
    ack = summary["ackAutoscaler"]
    assert ack["scaleUps"] >= 1 and ack["scaleDowns"] >= 1
    assert ack["changes"][0].split(" ", 1)[1].startswith(f"{POOL} 0→")
    assert summary["nodesAdded"] == summary["nodesRemoved"] > 0
    assert summary["eciCost"] == 0 and summary["nodeCost"] == summary["costEstimate"] > 0
    assert summary["idleNodeSeconds"] > 0
    assert "no agent (--no-agent): no decision, no CS write" in without_agent.stderr
    assert "ACK autoscaler: t+" in without_agent.stderr


def test_without_the_agent_the_report_says_who_scaled(without_agent, report_dir):
    """The report lists ACK's autoscaler's changes apart from the (absent) agent's decisions."""
    finished(without_agent)
    page = (report_dir / "no-agent.html").read_text(encoding="utf-8")
    assert "<h2>ACK's own autoscaler</h2>" in page
    assert f"{POOL} 0→" in page
    assert "No decision round had pods to decide for." in page


def test_with_the_agent_no_cs_write_and_the_pool_still_acks(with_agent):
    """The scenario's stated outcome with the agent: every task done, ACK's autoscaler alone
    writes the pool (the agent has no managed pool there), at rest."""
    summary = finished(with_agent)
    assert summary["agent"] is True
    assert summary["nodeCost"] + summary["eciCost"] == pytest.approx(
        summary["costEstimate"], abs=1e-3
    )
