"""Each built-in scenario meets the outcome its description states ("expected: ..."), read from
`python -m agent dev --scenario S --json` run as a user runs it (one run per scenario, shared by
its tests). seed and drain-fail are checked by their own modules (test_dev_seed_walkthrough,
test_dev_drain_fail), which run them once for more checks."""

from __future__ import annotations

from typing import Any

import pytest

from agent.sim.scenario import available_scenarios, load_scenario
from tests.support.dev_process import SPEED, DevResult, run_dev

# Where each built-in scenario's stated outcome is asserted.
OUTCOME_TESTS = {
    "seed": "tests/e2e/test_dev_seed_walkthrough.py",
    "drain-fail": "tests/e2e/test_dev_drain_fail.py",
    "burst": __file__,
    "eci-mixed": __file__,
    "stockout": __file__,
    "chaos": __file__,
    "seed-companion": "tests/e2e/test_dev_seed_companion.py",
    # ~2 minutes of both cores per run: its bench checks its outcome instead
    "burst-10k": "bench/burst_10k_bench.py",
}
# burst runs at its own speed, 50: about 1,650 simulated seconds, ~37 s on 2 cores. Its first
# decision's writes (~500 ECI patches, ~1,200 pod Events) take ~7 real seconds in this one process
# whatever the speed; at 100 that is 700 simulated seconds of its 1,800, and a busy machine then
# pushes the run past its limit.
BURST_SPEED = "50"
BURST_TIMEOUT_SECONDS = 150.0


def scenario_run(name: str, *, speed: str = SPEED, timeout: float | None = None) -> DevResult:
    args = ("--scenario", name, "--json", "--speed", speed)
    return run_dev(*args) if timeout is None else run_dev(*args, timeout=timeout)


def finished(result: DevResult) -> dict[str, Any]:
    """The summary of a run that ended at rest (exit 0) with every task done."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    summary = result.summary()
    tasks = load_scenario(summary["scenario"]).task_count
    assert f"Ray job: {tasks}/{tasks} tasks done, 0 failed" in result.stderr
    assert summary["ending"] == "rest"
    assert summary["running"] == summary["pods"] > 0
    assert summary["unplaceable"] == 0
    return summary


def all_given_back(summary: dict[str, Any]) -> None:
    assert summary["nodesAdded"] == summary["nodesRemoved"] > 0
    assert all(p == {"desired": 0, "nodes": 0} for p in summary["poolsAtEnd"].values()), summary[
        "poolsAtEnd"
    ]


def test_every_built_in_scenario_states_its_expected_outcome_and_has_a_test():
    """Each description says "expected: ..." and a test module asserts it."""
    assert sorted(OUTCOME_TESTS) == available_scenarios()
    for name in available_scenarios():
        assert "expected: " in load_scenario(name).description, name


@pytest.fixture(scope="module")
def burst() -> DevResult:
    return scenario_run("burst", speed=BURST_SPEED, timeout=BURST_TIMEOUT_SECONDS)


def test_burst_runs_every_worker_and_gives_every_node_back_before_its_limit(burst):
    """All 1,200 workers Running (pool nodes up to the node quota, ECI as overflow), every task
    done, every node given back, at rest before the scenario's 1,800 s."""
    summary = finished(burst)
    assert summary["pods"] == 1200
    assert summary["eciPods"] > 0  # pods that ran on ECI; at most 500 at a time (maxPods)
    # the cluster's node quota (100, two of them system nodes) holds at every moment; over the
    # run more may be added, as nodes one pool gives back leave room for another's
    assert 0 < summary["peakPoolNodes"] <= 100 - 2
    assert summary["nodesAdded"] >= summary["peakPoolNodes"]
    all_given_back(summary)
    assert summary["simulatedSeconds"] < load_scenario("burst").time_limit_seconds


@pytest.fixture(scope="module")
def eci_mixed() -> DevResult:
    return scenario_run("eci-mixed")


def test_eci_mixed_runs_the_workers_eci_cannot_run_on_pool_nodes(eci_mixed):
    """hostPath, privileged and >64 vCPU workers get pool nodes; every task done, every node
    given back, at rest."""
    summary = finished(eci_mixed)
    assert summary["pods"] - summary["eciPods"] >= 16
    all_given_back(summary)


def test_eci_mixed_runs_every_eci_eligible_worker_on_eci(eci_mixed):
    """The 30 plain workers (one per plain task) run on ECI under eci-first."""
    summary = eci_mixed.summary()
    (plain,) = [t for t in load_scenario("eci-mixed").job.task_groups if t.name == "plain"]
    assert summary["eciPods"] == plain.count == 30


@pytest.fixture(scope="module")
def stockout() -> DevResult:
    return scenario_run("stockout")


def test_stockout_gives_the_stuck_pool_back_and_falls_over_to_the_backup_pool_and_eci(stockout):
    """The cheap pool's task fails with NoStock; the agent lowers its desired size back to 0; the
    backup pool (max 6 nodes) and ECI run all 40 workers; at rest."""
    summary = finished(stockout)
    assert summary["pods"] == 40
    assert summary["errorsByCode"].get("OperationDenied.NoStock", 0) >= 1
    assert summary["poolsAtEnd"]["np-c7-cheap"] == {"desired": 0, "nodes": 0}
    assert 0 < summary["nodesAdded"] <= 6, "only the backup pool delivers"
    assert summary["eciPods"] > 0
    all_given_back(summary)


@pytest.fixture(scope="module")
def chaos() -> DevResult:
    return scenario_run("chaos")


def test_chaos_injects_every_fault_kind_and_the_run_survives(chaos):
    """Watch cuts, 410s, CS throttling and 5xx and FC 5xx were all injected and met by the agent;
    every worker ran on pool nodes (ECI off), every node given back, at rest."""
    summary = finished(chaos)
    faults = summary["faults"]
    injected, seen = faults["injected"], faults["seenByAgent"]
    for kind in ("cs_throttled", "cs_5xx", "fc_errors", "watch_cuts", "gone_410"):
        assert injected[kind] > 0, (kind, faults)
        assert seen[kind] > 0, (kind, faults)
    # the agent is the only client of CS and FC: it cannot meet more refusals than were injected
    # (fewer only if one lands as the run stops, or on a decider call's last attempt, which is
    # reported as a failed round rather than retried)
    assert seen["cs_throttled"] <= injected["cs_throttled"]
    assert seen["cs_5xx"] <= injected["cs_5xx"]
    assert seen["fc_errors"] <= injected["fc_errors"] + injected["fc_timeouts"]
    assert faults["survived"] is True
    assert summary["eciPods"] == 0 and summary["scaleWrites"] > 0
    all_given_back(summary)
