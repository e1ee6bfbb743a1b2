"""`python -m agent dev --json` on the seed scenario: the ACK walkthrough end to end through the
FC SDK decider, the summary line, and the HTML report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agent.catalog import allocatable_of
from agent.sim.scenario import load_scenario
from functions.quantity import parse_quantity
from tests.support.dev_process import SPEED, DevResult, run_dev

SEED = load_scenario("seed")


def fits(free: dict[str, int], request: dict[str, int]) -> int:
    """How many pods of `request` fit into `free` (milli-units)."""
    return min(free[name] // amount for name, amount in request.items() if amount)


def milli(resources: dict[str, str]) -> dict[str, int]:
    return {
        name: parse_quantity(value)
        for name, value in resources.items()
        if name in ("cpu", "memory")
    }


def minimal_new_nodes() -> tuple[int, int]:
    """(worker pods, pool nodes the pods that do not fit the system node need at least)."""
    (group,) = SEED.ray.worker_groups
    worker = milli(dict(group.requests))
    task_cpu = sum(t.count * t.num_cpus for t in SEED.job.task_groups)
    workers = math.ceil(task_cpu * 1000 / worker["cpu"])
    (system,) = SEED.system_nodes
    free = milli(allocatable_of(system.instance_type) or {})
    head = milli(dict(SEED.ray.head.requests))
    on_system = fits({k: free[k] - head.get(k, 0) for k in free}, worker) * system.count
    (pool,) = SEED.pools
    per_node = fits(milli(allocatable_of(pool.instance_type) or {}), worker)
    return workers, math.ceil(max(0, workers - on_system) / per_node)


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DevResult, Path]:
    """One seed run with the default (FC SDK) decider, --json and --report."""
    report = tmp_path_factory.mktemp("dev") / "seed.html"
    return run_dev("--json", "--speed", SPEED, "--report", str(report)), report


def test_seed_runs_every_worker_and_finishes_the_job(seed_run):
    """Exit 0, all worker pods reached Running and all 15 tasks are done."""
    result, _report = seed_run
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    workers, _nodes = minimal_new_nodes()
    assert summary["scenario"] == "seed"
    assert summary["pods"] == summary["running"] == workers == 15
    assert summary["unplaceable"] == 0 and summary["errors"] == 0
    assert f"{SEED.task_count}/{SEED.task_count} tasks done, 0 failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_adds_the_minimal_number_of_nodes_in_one_scale_write(seed_run):
    """The pods the system node cannot hold get exactly the nodes they need."""
    summary = seed_run[0].summary()
    _workers, nodes = minimal_new_nodes()
    assert summary["nodesAdded"] == nodes
    assert summary["scaleWrites"] >= 1 and summary["decisions"] >= 1
    kinds = summary["decisionsByKind"]
    assert sum(kinds.values()) == summary["decisions"], "one count per decision line shown"
    assert kinds["scaleOut"] >= 1 and kinds["scaleIn"] >= 1  # the pool grew, then shrank
    assert summary["timeToAllRunningSeconds"] is not None
    assert summary["reactionMs"]["p50"] is not None and summary["costEstimate"] > 0


def test_seed_meets_its_stated_outcome(seed_run):
    """The description's "expected:": the pool grows by 5 nodes for the 13 workers the system
    node cannot hold, and is back to 0 when the run ends at rest."""
    summary = seed_run[0].summary()
    assert "grows by 5 nodes for the 13 workers" in SEED.description
    assert minimal_new_nodes() == (15, 5)
    assert summary["nodesAdded"] == summary["nodesRemoved"] == 5
    assert summary["poolsAtEnd"] == {"np-cpu": {"desired": 0, "nodes": 0}}
    assert summary["ending"] == "rest" and summary["eciPods"] == 0


def test_seed_summary_is_the_only_stdout_line(seed_run):
    """With --json, stdout carries exactly the summary; the banner goes to stderr."""
    result, _report = seed_run
    assert len(result.stdout.strip().splitlines()) == 1
    assert "get pod -w" in result.stderr and "get node -w" in result.stderr


def test_report_is_a_self_contained_html_page_with_a_timeline(seed_run):
    """--report writes one HTML file with an inline SVG chart, a legend and no external asset."""
    _result, report = seed_run
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</svg>" in page
    assert 'id="panel-pods"' in page and 'id="panel-pool-np-cpu"' in page
    assert "simulated time (s)" in page and "Ready nodes" in page and "Estimated cost" in page
    assert 'class="decision"' in page and 'class="reasons"' in page
    for external in ("<script", "<link", "src=", "url(", "@import"):
        assert external not in page
