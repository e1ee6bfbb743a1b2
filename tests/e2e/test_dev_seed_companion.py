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
SCENARIOS = Path(__file__).resolve().parents[2] / "agent" / "sim" / "scenarios"
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
    # x50, not x100: the agent's reaction is real time, and at x100 its ~0.2 s is 20 simulated
    # seconds, inside which a 30 s scan of ACK's autoscaler can fall (bench/companion_bench.py).
    return run_dev("--scenario", SCENARIO, "--json", "--speed", "50")


@pytest.fixture(scope="module")
def pool_first(report_dir: Path) -> DevResult:
    """seed-companion under pool-first, with ACK's scan every 60 s (ACK lets a cluster choose its
    scan interval) and 120 s scale-down times, so that the agent's first round (real time, 10-20
    simulated s at x50) comes well before ACK's first scan, and the run ends sooner."""
    scenario = report_dir / "seed-companion-pool-first.yaml"
    text = (SCENARIOS / f"{SCENARIO}.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "ackAutoscaler:\n  scanIntervalSeconds: 30\n  scaleDownUnneededSeconds: 600\n",
        "ackAutoscaler:\n  scanIntervalSeconds: 60\n  scaleDownUnneededSeconds: 120\n"
        "  scaleDownDelayAfterAddSeconds: 120\n",
    )
    assert "scanIntervalSeconds: 60" in text
    scenario.write_text(text, encoding="utf-8")
    report = report_dir / "pool-first.html"
    return run_dev(
        "--scenario", str(scenario), "--strategy", "pool-first", "--json", "--speed", "50",
        "--report", str(report),
    )  # fmt: skip


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


def test_with_the_agent_workers_start_on_eci_sooner_and_no_cs_write(with_agent, without_agent):
    """The scenario's stated outcome with the agent under its strategy (latency, 60 s budget):
    the pool is a companion whose scan + boot (30 + 60-90 s) is over the budget, so every worker
    goes to ECI, all run sooner than with ACK's autoscaler alone, and the agent writes no pool."""
    summary = finished(with_agent)
    assert summary["agent"] is True
    assert summary["eciPods"] > 0 and summary["nodesAdded"] == 0  # the system node holds 2
    assert summary["ackAutoscaler"]["scaleUps"] == 0
    assert summary["timeToAllRunningSeconds"] < finished(without_agent)["timeToAllRunningSeconds"]
    assert summary["nodeCost"] + summary["eciCost"] == pytest.approx(
        summary["costEstimate"], abs=1e-3
    )


def test_pool_first_leaves_the_workers_to_acks_autoscaler(pool_first, report_dir):
    """Under pool-first the companion pool ranks before ECI: the agent leaves the pods to ACK's
    autoscaler, says so in its decisions, and neither writes the pool nor patches a pod."""
    summary = finished(pool_first)
    assert summary["agent"] is True and summary["decisions"] >= 1
    assert summary["eciPods"] == 0 and summary["ackAutoscaler"]["scaleUps"] >= 1
    page = (report_dir / "pool-first.html").read_text(encoding="utf-8")
    assert f"left for ACK autoscaler on {POOL}" in page
