"""The dev run's HTML report (pure): rendered from a RunRecord, read back for its structure —
one panel per series group on its own scale, labelled axes, a legend beside each panel, a summary
in words and units, each decision with its time and reason, long node lists folded."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from agent.dev.report import render_report
from agent.dev.summary import RunRecord, Sample
from agent.sim.report import CostReport, EciCost, PoolCost
from agent.sim.scenario import load_scenario

STOCKOUT = load_scenario("stockout")
REMOVED = tuple(f"cn-hangzhou.172.16.0.{i}" for i in range(10))
SUMMARY = {
    "scenario": "stockout",
    "pods": 1200,
    "running": 1200,
    "nodesAdded": 13,
    "timeToAllRunningSeconds": 258.0,
    "idleNodeSeconds": 2540.1,
    "reactionMs": {"p50": 252.3, "p99": 260.0, "pods": 39},
    "errorsByCode": {"OperationDenied.NoStock": 2},
    "scaleDown": {"failed": 0, "cordonedAtEnd": 0},
    "costEstimate": 4.0738,
    "faults": {
        "injected": {"cs_throttled": 2, "watch_cuts": 1},
        "seenByAgent": {"cs_throttled": 2, "watch_cuts": 1},
        "survived": True,
    },
}


def sample(t: float, *, pending: int, running: int, cheap: int, backup: tuple[int, int]) -> Sample:
    return Sample(
        t=t,
        pending=pending,
        starting=0,
        running=running,
        eci=0,
        nodes=(("np-g7-backup", *backup),),
        wanted=(("np-c7-cheap", cheap), ("np-g7-backup", backup[0] + backup[1])),
    )


@pytest.fixture(scope="module")
def page() -> str:
    """A stockout-like run: the cheap pool is asked for 13 nodes and gets none, the backup pool
    boots 13; 1,200 pods on the pods panel; a scale-out round and a scale-in round."""
    record = RunRecord(namespace="default", eci_node=None, pool_label="p")
    record.samples = [
        sample(0, pending=1200, running=0, cheap=0, backup=(0, 0)),
        sample(10, pending=1200, running=0, cheap=13, backup=(0, 0)),
        sample(80, pending=1200, running=0, cheap=13, backup=(13, 0)),
        sample(160, pending=0, running=1200, cheap=13, backup=(0, 13)),
        sample(600, pending=0, running=0, cheap=13, backup=(0, 3)),
    ]
    record.decided(
        t=10,
        outcome="scaled",
        pods=1200,
        text="pods round, 1200 pending pods → scaled: np-c7-cheap 0→13",
        reasons=("np-c7-cheap (40 pods): pool-first: np-c7-cheap has room (3 pods/node)",),
    )
    record.decided(
        t=500,
        outcome="removed",
        pods=0,
        text="scale-in round → removed: 10 nodes " + ", ".join(REMOVED),
        nodes=REMOVED,
        kind="scale-in",
    )
    record.decided(
        t=550,
        outcome="removed",
        pods=0,
        text="scale-in round → removed: 1 nodes cn-hangzhou.172.16.9.9",
        nodes=("cn-hangzhou.172.16.9.9",),
        kind="scale-in",
    )
    cost = CostReport(
        pools=(PoolCost("np-g7-backup", "ecs.g7.2xlarge", 2.5, 13, 9000, 6000, 3000, 6.25, 2.08),),
        eci=EciCost(pods=0, vcpu_seconds=0, gib_seconds=0, cost=0),
        total_cost=6.25,
        idle_cost=2.08,
    )
    return render_report(record, summary=SUMMARY, scenario=STOCKOUT, cost=cost, ending="rest")


def panels(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="panel" id="([^"]+)">(.*?)</section>', page, re.S))


def visible_text(fragment: str) -> str:
    """The text a reader sees: no tags, no tooltips (<title>)."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.hidden = 0

        def handle_starttag(self, tag, attrs):
            self.hidden += tag in ("title", "style")

        def handle_endtag(self, tag):
            self.hidden -= tag in ("title", "style")

        def handle_data(self, data):
            if not self.hidden:
                self.parts.append(data)

    parser = Text()
    parser.feed(fragment)
    return " ".join(" ".join(parser.parts).split())


def y_ticks(panel: str) -> list[str]:
    """The y axis' tick labels (text-anchor end, left of the plot)."""
    return re.findall(r'<text class="tick" x="\d+" y="[\d.]+" text-anchor="end">([\d,.]+)<', panel)


def test_pods_and_each_used_pool_get_their_own_panel_with_labelled_axes_and_a_legend(page):
    """A pods panel and one per pool that was asked for nodes, each an SVG with an x and a y axis
    label and a legend in the same row."""
    found = panels(page)
    assert list(found) == ["panel-pods", "panel-pool-np-c7-cheap", "panel-pool-np-g7-backup"]
    for panel in found.values():
        assert panel.count("<svg") >= 2 and 'class="legend"' in panel
        assert "simulated time (s)" in panel and 'class="axis-label y-label"' in panel
    assert ">worker pods</text>" in found["panel-pods"]
    assert ">nodes</text>" in found["panel-pool-np-g7-backup"]


def test_each_panel_has_its_own_y_scale(page):
    """1,200 pods do not squash a pool's 13 nodes: each axis ends just above its own peak."""
    found = panels(page)
    assert y_ticks(found["panel-pods"])[-1] == "1,200"
    assert y_ticks(found["panel-pool-np-g7-backup"])[-1] in ("14", "15")


def test_series_have_distinct_colours_named_in_the_legend_beside_them(page):
    """Ready nodes and running pods no longer share a colour; every line is in its legend."""
    found = panels(page)
    colours = re.findall(r'class="series" d="[^"]+" fill="none" stroke="(#\w+)"', page)
    pods = re.findall(r'class="series" d="[^"]+" fill="none" stroke="(#\w+)"', found["panel-pods"])
    pool = re.findall(
        r'class="series" d="[^"]+" fill="none" stroke="(#\w+)"', found["panel-pool-np-g7-backup"]
    )
    assert len(set(pods)) == len(pods) == 4 and len(set(pool)) == len(pool) == 3
    assert not set(pods) & set(pool) and len(colours) == 4 + 3 + 3
    legend = visible_text(found["panel-pods"])
    for name in ("pending", "Running", "on ECI", "decision round"):
        assert name in legend
    legend = visible_text(found["panel-pool-np-g7-backup"])
    for name in ("Ready nodes", "NotReady nodes", "wanted"):
        assert name in legend


def test_a_pool_that_never_delivered_is_drawn_with_wanted_against_got(page):
    """The stocked-out pool has a panel, a badge saying it got none, and the shortfall shaded."""
    cheap = panels(page)["panel-pool-np-c7-cheap"]
    assert "asked for 13 nodes, got none" in visible_text(cheap)
    assert "scenario failure: stockout" in visible_text(cheap)
    assert 'class="band"' in cheap and "wanted but not there" in visible_text(cheap)
    # The backup pool always had what it wanted: no band, and no legend entry for one.
    backup = panels(page)["panel-pool-np-g7-backup"]
    assert 'class="band"' not in backup and "wanted but not there" not in visible_text(backup)


def test_summary_reads_as_labels_with_units_and_cost_in_cny(page):
    """No raw JSON keys; durations in s, reactions in ms, the cost in CNY."""
    table = re.search(r'<table class="summary">.*?</table>', page, re.S)
    assert table is not None
    text = visible_text(table.group(0))
    for key in SUMMARY:
        if key != key.lower():  # the camelCase JSON keys
            assert key not in text
    assert "Estimated cost 4.07 CNY" in text
    assert "258.0 s (4 min 18 s)" in text
    assert "p50 252.3 ms, p99 260.0 ms, over 39 pods" in text
    assert "Errors by code OperationDenied.NoStock 2" in text
    assert "Idle node time 2,540.1 node·s" in text
    assert "Worker pods created 1,200" in text
    assert (
        "injected CS throttled 2, watch cuts 1; met by the agent CS throttled 2, watch cuts 1; "
        "survived yes"
    ) in text


def test_each_decision_shows_its_time_kind_and_reason_as_text(page):
    """The reason is printed under its decision, not only in a hover tooltip."""
    items = re.findall(
        r'<li class="decision">(.*?)</li>(?=<li class="decision">|</ol>)', page, re.S
    )
    assert len(items) == 3
    first = visible_text(items[0])
    assert first.startswith("t+10 s scale-out")
    assert "pool-first: np-c7-cheap has room (3 pods/node)" in first
    assert visible_text(items[1]).startswith("t+500 s scale-in")


def test_long_node_lists_are_folded_and_short_ones_shown(page):
    """Ten removed nodes go in a <details> fold, out of the decision's line; one is listed."""
    items = re.findall(
        r'<li class="decision">(.*?)</li>(?=<li class="decision">|</ol>)', page, re.S
    )
    folded = items[1]
    line = folded.split("<details>")[0]
    assert "<details><summary>10 nodes removed" in folded and REMOVED[0] not in line
    assert all(name in folded for name in REMOVED)
    assert "<details>" not in items[2] and "cn-hangzhou.172.16.9.9" in items[2]


def test_report_is_self_contained(page):
    """No script, stylesheet link, image source or import: one file that opens anywhere."""
    assert page.startswith("<!DOCTYPE html>")
    for external in ("<script", "<link", "src=", "url(", "@import", "http://", "https://"):
        assert external not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_cost_table_prices_every_pool_and_eci_in_cny(page):
    """The cost is a table with CNY columns and a total row."""
    table = re.search(r'<table class="cost">.*?</table>', page, re.S)
    assert table is not None
    text = visible_text(table.group(0))
    assert "cost (CNY)" in text and "np-g7-backup" in text and "ECI" in text
    assert "total 6.25 2.08" in text


def test_a_run_without_faults_says_so_in_one_phrase():
    """No row of zero counts: a run with nothing injected reads "none injected"."""
    record = RunRecord(namespace="default", eci_node=None, pool_label="p")
    quiet = {
        **SUMMARY,
        "faults": {"injected": {"cs_throttled": 0}, "seenByAgent": {}, "survived": True},
    }
    cost = CostReport(pools=(), eci=EciCost(0, 0, 0, 0), total_cost=0, idle_cost=0)
    page = render_report(record, summary=quiet, scenario=STOCKOUT, cost=cost, ending="rest")
    table = re.search(r'<table class="summary">.*?</table>', page, re.S)
    assert table is not None
    assert "Faults injected, and met by the agent none injected" in visible_text(table.group(0))
