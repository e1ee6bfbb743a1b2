"""`python -m agent dev --mode agentless --json` on the seed scenario: no agent process; the
EventBridge stand-in and the Timer trigger invoke the reconcile function on the FC emulator, the
pool grows for the workers and shrinks back to its minimum."""

from __future__ import annotations

from typing import Any

import pytest

from agent.sim.scenario import load_scenario
from tests.support.dev_process import SPEED, run_dev

SEED = load_scenario("seed")


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    result = run_dev("--mode", "agentless", "--json", "--quiet", "--speed", SPEED)
    assert result.returncode == 0, result.stderr[-3000:]
    parsed: dict[str, Any] = result.summary()
    return parsed


def test_every_worker_runs_and_the_pool_returns_to_its_minimum(summary: dict[str, Any]) -> None:
    """All 15 workers Running, the run at rest, np-cpu back to its minimum with no node left."""
    (pool,) = SEED.pools
    assert summary["ending"] == "rest"
    assert summary["running"] == summary["pods"] == 15
    assert summary["nodesAdded"] > 0 and summary["nodesRemoved"] == summary["nodesAdded"]
    assert summary["poolsAtEnd"][pool.pool_id] == {"desired": pool.min_size, "nodes": 0}


def test_events_scaled_out_and_the_timer_scaled_in(summary: dict[str, Any]) -> None:
    """Both triggers ran the function, none of its runs failed, and nothing ran as an agent:
    the scale-in rounds came from Timer invocations."""
    agentless = summary["agentless"]
    assert agentless["invocations"].get("eventbridge", 0) > 0
    assert agentless["invocations"].get("timer", 0) > 0
    assert agentless["failed"] == 0
    assert summary["decisionsByKind"]["scaleIn"] > 0
    assert summary["errors"] == 0
