"""The `--report FILE.html` page of a dev-mode run: one self-contained HTML file (inline CSS and
SVG, no script, no external asset). It holds the summary in words and units, one chart panel for
the worker pods and one per node pool (each on its own y scale, legend beside it; a pool that was
asked for nodes it never got is drawn with the shortfall shaded), the decision rounds with each
action's reason written out (long node lists folded), and the cost in CNY."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agent.dev.chart import Band, Series, legend_html, panel_svg
from agent.dev.closing import FAULT_WORDS
from agent.dev.summary import Decision, RunRecord, Sample
from agent.sim.report import CostReport

PENDING_COLOR, STARTING_COLOR = "#d55e00", "#e69f00"
RUNNING_COLOR, ECI_COLOR = "#0072b2", "#cc79a7"
READY_COLOR, NOT_READY_COLOR, WANTED_COLOR = "#009e73", "#8a6d00", "#222"
SHORTFALL_COLOR = "#f4c7c3"
FOLD_NODES_OVER = 3  # node lists longer than this are folded
VERDICTS = {
    "rest": "done: the workload finished and the cluster is at rest",
    "time-limit": "time limit: the run did not finish in time",
    "interrupted": "interrupted before the run finished",
    "agent-stopped": "the agent stopped by itself before the run finished",
}

# Summary keys (the --json line's) → label, and the unit of the value (and of its parts).
LABELS: dict[str, tuple[str, str]] = {
    "scenario": ("Scenario", ""),
    "pods": ("Worker pods created", "pods"),
    "running": ("Worker pods that reached Running", "pods"),
    "unplaceable": ("Pods unplaceable at the end", "pods"),
    "unplaceableTransient": ("Pods unplaceable for a while, placed later", "pods"),
    "nodesAdded": ("Nodes added", "nodes"),
    "nodesRemoved": ("Nodes removed", "nodes"),
    "peakPoolNodes": ("Most pool nodes at once", "nodes"),
    "eciPods": ("Pods run on ECI", "pods"),
    "timeToAllRunningSeconds": ("First pod created → all workers Running", "s"),
    "firstNodeRequestedSeconds": ("Ray asked for workers → first node requested", "s"),
    "idleNodeSeconds": ("Idle node time", "node·s"),
    "reactionMs": ("Reaction, real time (Unschedulable → serving write)", "ms"),
    "decisions": ("Decision rounds", ""),
    "decisionsByKind": ("Decision rounds by kind", ""),
    "scaleDown": ("Scale-in", ""),
    "agent": ("Agent running", ""),
    "scaleWrites": ("Pool scale writes (CS ModifyClusterNodePool)", ""),
    "agentCsWrites": ("CS write calls by the agent", ""),
    "ackAutoscaler": ("ACK's own autoscaler (pools with auto scaling on)", ""),
    "nodeCost": ("Pool node cost", "CNY"),
    "eciCost": ("ECI cost", "CNY"),
    "errors": ("Errors", ""),
    "errorsByCode": ("Errors by code", ""),
    "costEstimate": ("Estimated cost", "CNY"),
    "ending": ("How the run ended", ""),
    "simulatedSeconds": ("Run length", "s"),
    "poolsAtEnd": ("Pools at the end (desired size, nodes)", ""),
    "faults": ("Faults injected, and met by the agent", ""),
}
PART_LABELS = {
    "failed": "removals failed",
    "pods": "over",
    "uncordonedAfterFailure": "uncordoned after a failure",
    "failedThenRemoved": "failed, then removed",
    "cordonedAtEnd": "cordoned at the end",
    "scaleOut": "scale-out",
    "followUp": "follow-up",
    "scaleIn": "scale-in",
    "injected": "injected",
    "seenByAgent": "met by the agent",
    **FAULT_WORDS,
}
PART_UNITS = {"pods": "pods"}  # reactionMs.pods: how many pods the percentiles are over
PART_KEYS_AS_IS = ("errorsByCode",)  # their keys are error codes, shown as they are
NONE_TEXT = {
    "timeToAllRunningSeconds": "not reached",
    "firstNodeRequestedSeconds": "no node requested",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1240px; }
h1 { margin-bottom: .2em; } h2 { margin-top: 1.4em; border-bottom: 1px solid #ddd; }
h3 { margin: .8em 0 .2em; font-size: 1.05em; }
.verdict { font-weight: 600; } .muted { color: #666; }
svg text { font-size: 11px; fill: #444; } svg .axis-label { font-size: 12px; fill: #222; }
svg .decision-number { font-size: 10px; fill: #444; font-weight: 600; }
.panel-row { display: flex; align-items: flex-start; gap: 12px; }
.legend { list-style: none; padding: 0; margin: 30px 0 0; font-size: .9em; min-width: 250px; }
.legend li { margin: 0 0 .35em; white-space: nowrap; }
.legend svg { vertical-align: middle; margin-right: .5em; }
.badge { display: inline-block; padding: 0 .5em; border-radius: 3px; font-size: .85em;
         font-weight: 600; margin-left: .5em; }
.badge.stuck { background: #fde2e1; color: #a40e0e; border: 1px solid #e8a19c; }
.badge.ok { background: #e3f4ec; color: #0b6b45; border: 1px solid #9fd6bd; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 3px 14px 3px 0;
  vertical-align: top; }
.summary th { font-weight: 600; white-space: nowrap; padding-right: 2em; } .summary td.value { font-variant-numeric: tabular-nums; }
.cost td.num, .cost th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cost tr.total td { border-top: 1px solid #999; font-weight: 600; }
ol.decisions > li { margin-bottom: .7em; }
.when { font-family: ui-monospace, monospace; font-weight: 600; }
.kind { display: inline-block; padding: 0 .4em; border-radius: 3px; background: #eef;
        font-size: .85em; margin: 0 .3em; }
ul.reasons { margin: .2em 0 0; padding-left: 1.2em; } ul.reasons li { color: #333; }
.reason-label { color: #666; font-size: .9em; }
details { margin-top: .2em; } summary { cursor: pointer; color: #0a4f8a; }
.nodes { columns: 3; font-family: ui-monospace, monospace; font-size: .85em; margin: .3em 0; }
"""


def render_report(
    record: RunRecord,
    *,
    summary: Mapping[str, Any],
    scenario: Any,
    cost: CostReport,
    ending: str = "",
) -> str:
    """The whole page."""
    title = f"ray-ack-scaler dev run: {scenario.name}"
    verdict = VERDICTS.get(ending, ending)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(scenario.description or "")}</p>
{f'<p class="verdict">{html.escape(verdict)}</p>' if verdict else ""}
<h2>Summary</h2>
{summary_table(summary)}
<h2>Timeline</h2>
<p class="muted">Simulated seconds since the run started. Each panel has its own scale; the
dotted lines are decision rounds, numbered as in the Decisions list below.</p>
{timeline(record, scenario=scenario)}
<h2>Decisions</h2>
{decisions_html(record.decisions)}
<h2>ACK's own autoscaler</h2>
{ack_changes_html(record)}
<h2>Cost</h2>
{cost_table(cost)}
<p class="muted">Catalog and scenario prices (approximations, CNY), for comparing strategies on
the same scenario, not for predicting a bill.</p>
</body></html>
"""


# --- summary -------------------------------------------------------------------------------------


def summary_table(summary: Mapping[str, Any]) -> str:
    rows = []
    for key, value in summary.items():
        label, unit = LABELS.get(key, (_words(key).capitalize(), _unit_of(key)))
        rows.append(
            f'<tr data-key="{html.escape(str(key))}"><th>{html.escape(label)}</th>'
            f'<td class="value">{html.escape(_value(key, value, unit))}</td></tr>'
        )
    return '<table class="summary">' + "".join(rows) + "</table>"


def _value(key: str, value: Any, unit: str, *, part: bool = False) -> str:
    """The value in words; the counted thing ("pods", "nodes") is named only inside a part, as
    the row's label names it otherwise."""
    if isinstance(value, Mapping):
        if not value:
            return "none"
        if key == "faults" and not any((value.get("injected") or {}).values()):
            return "none injected"
        parts = (
            f"{k if key in PART_KEYS_AS_IS else PART_LABELS.get(k, _words(k))} "
            f"{_value(k, v, PART_UNITS.get(k, unit or _unit_of(k)), part=True)}"
            for k, v in value.items()
        )
        nested = any(isinstance(v, Mapping) for v in value.values())
        return ("; " if nested else ", ").join(parts)
    if isinstance(value, list):
        return "; ".join(str(item) for item in value) or "none"
    if value is None:
        return NONE_TEXT.get(key, "n/a")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    if unit == "CNY":
        return f"{value:,.2f} CNY"
    number = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    extra = ""
    if unit == "s" and value >= 120:
        extra = f" ({_duration(value)})"
    elif unit == "node·s" and value >= 3600:
        extra = f" ({value / 3600:,.1f} node·h)"
    suffix = "" if not unit or (unit in ("pods", "nodes") and not part) else f" {unit}"
    return number + suffix + extra


def _words(key: str) -> str:
    """camelCase → words, without a unit suffix: "idleNodeSeconds" → "idle node"."""
    key = re.sub(r"(Seconds|Ms)$", "", key)
    return re.sub(r"(?<!^)(?=[A-Z])", " ", key).lower()


def _unit_of(key: str) -> str:
    if key.endswith("Seconds"):
        return "s"
    if key.endswith("Ms"):
        return "ms"
    return "CNY" if "cost" in key.lower() else ""


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


# --- timeline ------------------------------------------------------------------------------------


def pod_series(samples: Sequence[Sample]) -> list[Series]:
    return [
        Series("pending (no node)", PENDING_COLOR, [(s.t, s.pending) for s in samples]),
        Series(
            "starting (bound, not Running)",
            STARTING_COLOR,
            [(s.t, s.starting) for s in samples],
            dash="5 3",
        ),
        Series("Running", RUNNING_COLOR, [(s.t, s.running) for s in samples]),
        Series("on ECI", ECI_COLOR, [(s.t, s.eci) for s in samples]),
    ] + (
        # the RayCluster's replicas, over all worker groups: what Ray's autoscaler asked for
        [
            Series(
                "wanted (RayCluster replicas)",
                WANTED_COLOR,
                [(s.t, s.workers_wanted) for s in samples],
                dash="2 3",
                width=1.5,
            )
        ]
        if any(s.replicas for s in samples)
        else []
    )


def pool_ids(record: RunRecord, scenario: Any) -> list[str]:
    """The scenario's pools in its order, then any other pool seen in the run."""
    ids = [spec.pool_id for spec in getattr(scenario, "pools", ())]
    seen = {p for s in record.samples for p, _n, _r in s.nodes}
    seen |= {p for s in record.samples for p, _w in s.wanted}
    return ids + sorted(seen - set(ids))


def pool_series(samples: Sequence[Sample], pool: str) -> tuple[list[Series], list[Band]]:
    nodes = [(s.t, dict((p, (n, r)) for p, n, r in s.nodes).get(pool, (0, 0))) for s in samples]
    got = [(t, n + r) for t, (n, r) in nodes]
    lines = [
        Series("Ready nodes", READY_COLOR, [(t, r) for t, (_n, r) in nodes]),
        Series(
            "NotReady nodes (booting)",
            NOT_READY_COLOR,
            [(t, n) for t, (n, _r) in nodes],
            dash="6 3",
        ),
    ]
    bands = []
    if any(s.wanted for s in samples):
        wanted = [(s.t, dict(s.wanted).get(pool, 0)) for s in samples]
        # drawn last, so it shows on top where the pool got what it wanted
        lines.append(Series("wanted (desired size)", WANTED_COLOR, wanted, dash="2 3", width=1.5))
        if any(w > g for (_t, w), (_t2, g) in zip(wanted, got, strict=True)):
            # only a pool that fell short gets the band (and its legend entry)
            bands.append(Band("wanted but not there", SHORTFALL_COLOR, upper=wanted, lower=got))
    return lines, bands


def pool_state(samples: Sequence[Sample], pool: str) -> dict[str, int]:
    """Peaks and end state of one pool: wanted (desired) and got (nodes, Ready or not)."""
    got = [sum(n + r for p, n, r in s.nodes if p == pool) for s in samples] or [0]
    ready = [sum(r for p, _n, r in s.nodes if p == pool) for s in samples] or [0]
    wanted = [dict(s.wanted).get(pool, 0) for s in samples] or [0]
    return {
        "peak_wanted": max(wanted),
        "peak_got": max(got),
        "wanted": wanted[-1],
        "got": got[-1],
        "ready": ready[-1],
    }


def pool_badge(state: Mapping[str, int]) -> str:
    if state["peak_wanted"] > 0 and state["peak_got"] == 0:
        return (
            f'<span class="badge stuck">asked for {state["peak_wanted"]} nodes, got none'
            + (f" (still wants {state['wanted']} at the end)" if state["wanted"] else "")
            + "</span>"
        )
    if state["wanted"] > state["got"]:
        return (
            f'<span class="badge stuck">short at the end: wants {state["wanted"]}, '
            f"has {state['got']}</span>"
        )
    return ""


def timeline(record: RunRecord, *, scenario: Any) -> str:
    samples, decisions = record.samples, record.decisions
    end = max([s.t for s in samples] + [d.t for d in decisions] + [1.0])
    marks = [(d.t, f"{number}. t+{d.t:.0f}s {d.text}") for number, d in enumerate(decisions, 1)]
    pods = pod_series(samples)
    panels = [
        _panel(
            "panel-pods",
            "<h3>Worker pods</h3>",
            panel_svg(
                pods,
                end=end,
                y_label="worker pods",
                decisions=marks,
                height=240,
                label="worker pods over time",
            ),
            legend_html(pods),
        )
    ]
    unused = []
    specs = {spec.pool_id: spec for spec in getattr(scenario, "pools", ())}
    for pool in pool_ids(record, scenario):
        state = pool_state(samples, pool)
        spec = specs.get(pool)
        about = (
            f"{spec.instance_type}, bounds {spec.min_size}–{spec.max_size}"
            + (f", scenario failure: {spec.failure}" if spec.failure != "none" else "")
            if spec is not None
            else ""
        )
        if not (state["peak_wanted"] or state["peak_got"]):
            unused.append(f"{pool}" + (f" ({about})" if about else ""))
            continue
        lines, bands = pool_series(samples, pool)
        heading = (
            f'<h3>Nodes in pool {html.escape(pool)} <span class="muted">'
            f"{html.escape(about)}</span>{pool_badge(state)}</h3>"
        )
        panels.append(
            _panel(
                f"panel-pool-{pool}",
                heading,
                panel_svg(
                    lines,
                    end=end,
                    y_label="nodes",
                    decisions=marks,
                    bands=bands,
                    height=190,
                    label=f"nodes in pool {pool} over time",
                    numbered=False,
                ),
                legend_html(lines, bands=bands),
            )
        )
    if unused:
        panels.append(
            '<p class="muted unused-pools">Pools never asked for a node: '
            + html.escape(", ".join(unused))
            + "</p>"
        )
    return "\n".join(panels)


def _panel(panel_id: str, heading: str, svg: str, legend: str) -> str:
    return (
        f'<section class="panel" id="{html.escape(panel_id)}">{heading}'
        f'<div class="panel-row">{svg}{legend}</div></section>'
    )


# --- decisions -----------------------------------------------------------------------------------


def decisions_html(decisions: Sequence[Decision]) -> str:
    if not decisions:
        return "<p>No decision round had pods to decide for.</p>"
    items = []
    for decision in decisions:
        text = decision.text
        if decision.nodes:  # the names go in the fold below
            text = text.replace(" " + ", ".join(decision.nodes), "")
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in decision.reasons)
        items.append(
            f'<li class="decision"><span class="when">t+{decision.t:.0f} s</span>'
            f'<span class="kind">{html.escape(decision.kind)}</span> {html.escape(text)}'
            + (
                f'<div class="reason-label">why:</div><ul class="reasons">{reasons}</ul>'
                if reasons
                else ""
            )
            + _nodes_html(decision.nodes)
            + "</li>"
        )
    return '<ol class="decisions">' + "".join(items) + "</ol>"


def ack_changes_html(record: RunRecord) -> str:
    """What ACK's own autoscaler (the simulator's stand-in) did to pools with auto scaling on:
    its changes are not the agent's, and are listed apart from its decisions."""
    if not record.ack_changes:
        return "<p>ACK's own autoscaler changed no pool.</p>"
    items = "".join(
        f'<li><span class="when">t+{c.t:.0f} s</span><span class="kind">{html.escape(c.kind)}'
        f"</span> {html.escape(c.text)}</li>"
        for c in record.ack_changes
    )
    return f'<ol class="decisions">{items}</ol>'


def _nodes_html(nodes: Sequence[str]) -> str:
    if not nodes:
        return ""
    names = "".join(f"<li>{html.escape(n)}</li>" for n in nodes)
    if len(nodes) <= FOLD_NODES_OVER:
        return f'<ul class="nodes">{names}</ul>'
    return (
        f"<details><summary>{len(nodes)} nodes removed (show names)</summary>"
        f'<ul class="nodes">{names}</ul></details>'
    )


# --- cost ----------------------------------------------------------------------------------------


def cost_table(cost: CostReport) -> str:
    head = (
        "<tr><th>where</th><th>instance type</th><th class=num>nodes / pods</th>"
        "<th class=num>price (CNY/h)</th><th class=num>node-hours</th><th class=num>busy h</th>"
        "<th class=num>idle h</th><th class=num>cost (CNY)</th><th class=num>idle cost (CNY)</th>"
        "</tr>"
    )
    rows = [
        f"<tr><td>{html.escape(p.pool_id)}</td><td>{html.escape(p.instance_type)}</td>"
        f"<td class=num>{p.nodes}</td><td class=num>{p.price_per_hour:.3f}</td>"
        f"<td class=num>{p.node_seconds / 3600:.2f}</td>"
        f"<td class=num>{p.busy_seconds / 3600:.2f}</td>"
        f"<td class=num>{p.idle_seconds / 3600:.2f}</td><td class=num>{p.cost:.2f}</td>"
        f"<td class=num>{p.idle_cost:.2f}</td></tr>"
        for p in cost.pools
    ]
    if cost.eci is not None:
        rows.append(
            f"<tr><td>ECI</td><td>billed spec, per second</td><td class=num>{cost.eci.pods}</td>"
            f"<td class=num colspan=4>{cost.eci.vcpu_seconds / 3600:.2f} vCPU-h, "
            f"{cost.eci.gib_seconds / 3600:.2f} GiB-h</td>"
            f"<td class=num>{cost.eci.cost:.2f}</td><td></td></tr>"
        )
    rows.append(
        f'<tr class="total"><td colspan=7>total</td><td class=num>{cost.total_cost:.2f}</td>'
        f"<td class=num>{cost.idle_cost:.2f}</td></tr>"
    )
    return '<table class="cost">' + head + "".join(rows) + "</table>"
