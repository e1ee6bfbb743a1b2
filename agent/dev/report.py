"""The `--report FILE.html` page of a dev-mode run: one self-contained HTML file (inline CSS and
SVG, no script, no external asset) with the timeline chart — worker pods pending and running,
nodes per pool NotReady and Ready, pods on ECI over simulated time, decisions marked — a legend,
the summary, the decisions with their reasons and the cost report."""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from agent.dev.summary import Decision, RunRecord, Sample

WIDTH, HEIGHT = 960, 360
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 36
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22")
PENDING_COLOR, RUNNING_COLOR, ECI_COLOR, DECISION_COLOR = "#d62728", "#2ca02c", "#ff7f0e", "#555"


def series_of(samples: Sequence[Sample]) -> dict[str, tuple[str, str, list[tuple[float, int]]]]:
    """Name → (colour, dash pattern, step points) for every line of the chart."""
    pools = sorted({pool for s in samples for pool, _n, _r in s.nodes})
    lines: dict[str, tuple[str, str, list[tuple[float, int]]]] = {
        "worker pods pending": (PENDING_COLOR, "", [(s.t, s.pending) for s in samples]),
        "worker pods running": (RUNNING_COLOR, "", [(s.t, s.running) for s in samples]),
        "pods on ECI": (ECI_COLOR, "", [(s.t, s.eci) for s in samples]),
    }
    for index, pool in enumerate(pools):
        color = PALETTE[index % len(PALETTE)]
        counts = [(s.t, {p: (n, r) for p, n, r in s.nodes}.get(pool, (0, 0))) for s in samples]
        lines[f"{pool} nodes Ready"] = (color, "", [(t, c[1]) for t, c in counts])
        lines[f"{pool} nodes NotReady"] = (color, "6 4", [(t, c[0]) for t, c in counts])
    return lines


def timeline_svg(samples: Sequence[Sample], decisions: Sequence[Decision]) -> str:
    """The chart: step lines over simulated seconds, a dotted vertical line per decision."""
    end = max([s.t for s in samples] + [d.t for d in decisions] + [1.0])
    lines = series_of(samples)
    top = max([v for _c, _d, points in lines.values() for _t, v in points] + [1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * max(0.0, t) / end

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="timeline">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#ccc"/>',
    ]
    for tick in _ticks(top):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for tick in _ticks(end):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{tick}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle">'
        "simulated seconds</text>"
    )
    for decision in decisions:
        parts.append(
            f'<line class="decision" x1="{x(decision.t):.1f}" x2="{x(decision.t):.1f}" '
            f'y1="{TOP}" y2="{TOP + plot_h}" stroke="{DECISION_COLOR}" '
            f'stroke-dasharray="2 3"><title>{html.escape(_decision_label(decision))}'
            "</title></line>"
        )
    for name, (color, dash, points) in lines.items():
        if not points:
            continue
        path = _step_path(points, end, x=x, y=y)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dashed}>'
            f"<title>{html.escape(name)}</title></path>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _step_path(points: Sequence[tuple[float, int]], end: float, *, x: Any, y: Any) -> str:
    commands = [f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"]
    for (_t0, v0), (t1, v1) in itertools.pairwise(points):
        if v1 != v0:  # a step: along to the change, then up or down
            commands.append(f"H{x(t1):.1f} V{y(v1):.1f}")
    commands.append(f"H{x(end):.1f}")
    return " ".join(commands)


def _ticks(top: float) -> list[int]:
    """About five round ticks from 0 to `top`."""
    step = 1
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        step = candidate
        if top / candidate <= 6:
            break
    return list(range(0, int(top) + 1, step))


def _decision_label(decision: Decision) -> str:
    return f"t+{decision.t:.0f}s {decision.text}"


def legend(samples: Sequence[Sample]) -> str:
    items = []
    for name, (color, dash, _points) in series_of(samples).items():
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(
            f'<li><svg width="28" height="10"><line x1="0" x2="28" y1="5" y2="5" '
            f'stroke="{color}" stroke-width="2"{dashed}/></svg> {html.escape(name)}</li>'
        )
    items.append(
        f'<li><svg width="28" height="10"><line x1="14" x2="14" y1="0" y2="10" '
        f'stroke="{DECISION_COLOR}" stroke-dasharray="2 3"/></svg> a decision round '
        "(hover for its reason)</li>"
    )
    return '<ul class="legend">' + "".join(items) + "</ul>"


def render_report(
    record: RunRecord, *, summary: Mapping[str, Any], scenario: Any, cost_text: str
) -> str:
    """The whole page."""
    title = f"ray-ack-scaler dev run: {scenario.name}"
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_value(v))}</td></tr>"
        for k, v in summary.items()
    )
    decisions = (
        "".join(
            f"<li><code>t+{d.t:.0f}s</code> {html.escape(d.text)}</li>" for d in record.decisions
        )
        or "<li>none</li>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
svg text {{ font-size: 11px; fill: #444; }}
.legend {{ list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0 1.5em; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 12px 2px 0; }}
pre {{ background: #f6f6f6; padding: 1em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(scenario.description or "")}</p>
<h2>Timeline</h2>
{timeline_svg(record.samples, record.decisions)}
{legend(record.samples)}
<h2>Summary</h2>
<table>{rows}</table>
<h2>Decisions</h2>
<ol>{decisions}</ol>
<h2>Cost</h2>
<pre>{html.escape(cost_text)}</pre>
</body></html>
"""


def _value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return "n/a" if value is None else str(value)
