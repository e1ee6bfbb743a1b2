"""One chart panel of the dev report: step lines over simulated time as an inline SVG, with its
own y scale, labelled axes, the decision rounds as numbered dotted lines, optional shaded bands,
and a legend to sit next to it. Plain strings in, markup out: no script, no external asset."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 880
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 30, 42
PAD = 8  # pixels between the top tick and the frame, so a line at the top stays visible
DECISION_COLOR = "#666"
Points = Sequence[tuple[float, int]]


@dataclass(frozen=True)
class Series:
    """One step line: its name in the legend, colour, SVG dash pattern ("" for solid)."""

    name: str
    color: str
    points: Points
    dash: str = ""
    width: float = 2.0


@dataclass(frozen=True)
class Band:
    """A shaded area between two step lines where `upper` exceeds `lower` (a shortfall)."""

    name: str
    color: str
    upper: Points
    lower: Points


def nice_step(top: float, *, most: int = 6) -> float:
    """A round tick step (1, 2 or 5 × 10ⁿ, at least 1) giving at most `most` steps to `top`."""
    if top <= most:
        return 1
    magnitude = 10.0 ** math.floor(math.log10(top / most))
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        if top / step <= most:
            return step
    return 10 * magnitude


def ticks(top: float, *, most: int = 6) -> list[float]:
    """Round ticks from 0 past `top` (the last one is the axis' end)."""
    step = nice_step(max(top, 1), most=most)
    count = math.ceil(max(top, 1) / step)
    return [i * step for i in range(count + 1)]


def panel_svg(
    series: Sequence[Series],
    *,
    end: float,
    y_label: str,
    decisions: Sequence[tuple[float, str]] = (),
    bands: Sequence[Band] = (),
    height: int = 200,
    label: str = "",
    numbered: bool = True,
) -> str:
    """The panel's SVG. `end`: the last simulated second on the x axis (shared by the panels so
    they line up); `decisions`: (t, tooltip) per decision round, numbered from 1 in order."""
    top_value = max([v for s in series for _t, v in s.points] + [1])
    y_ticks = ticks(top_value)
    y_top = y_ticks[-1]
    x_ticks = [t for t in ticks(end, most=10) if t <= end]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * min(max(0.0, t), end) / end

    def y(v: float) -> float:
        return TOP + PAD + (plot_h - PAD) * (1 - v / y_top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{html.escape(label)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#bbb"/>',
    ]
    for tick in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#eee"/><text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{_number(tick)}</text>'
        )
    for tick in x_ticks:
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{TOP + plot_h}" '
            f'y2="{TOP + plot_h + 4}" stroke="#999"/><text class="tick" x="{x(tick):.1f}" '
            f'y="{TOP + plot_h + 16}" text-anchor="middle">{_number(tick)}</text>'
        )
    parts.append(
        f'<text class="axis-label x-label" x="{LEFT + plot_w / 2}" y="{height - 6}" '
        'text-anchor="middle">simulated time (s)</text>'
        f'<text class="axis-label y-label" transform="translate(16 {TOP + plot_h / 2}) '
        f'rotate(-90)" text-anchor="middle">{html.escape(y_label)}</text>'
    )
    for band in bands:
        parts.extend(_band_rects(band, end, x=x, y=y))
    last_x, row = -100.0, 0
    for number, (t, tooltip) in enumerate(decisions, start=1):
        parts.append(
            f'<line class="decision" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" '
            f'y2="{TOP + plot_h}" stroke="{DECISION_COLOR}" stroke-dasharray="2 3">'
            f"<title>{html.escape(tooltip)}</title></line>"
        )
        if numbered:  # two rows of numbers, so close rounds do not print over each other
            row = 1 - row if x(t) - last_x < 16 else 0
            last_x = x(t)
            parts.append(
                f'<text class="decision-number" x="{x(t):.1f}" y="{TOP - 4 - 11 * row}" '
                f'text-anchor="middle">{number}</text>'
            )
    for line in series:
        if not line.points:
            continue
        dashed = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        parts.append(
            f'<path class="series" d="{_step_path(line.points, end, x=x, y=y)}" fill="none" '
            f'stroke="{line.color}" stroke-width="{line.width:g}"{dashed}>'
            f"<title>{html.escape(line.name)}</title></path>"
        )
    parts.append("</svg>")
    return "".join(parts)


def legend_html(
    series: Sequence[Series], *, bands: Sequence[Band] = (), decisions: bool = True
) -> str:
    """The panel's legend: one entry per line and band, and the decision marker."""
    items = []
    for line in series:
        dashed = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        items.append(
            f'<li><svg width="30" height="12" aria-hidden="true"><line x1="0" x2="30" y1="6" '
            f'y2="6" stroke="{line.color}" stroke-width="{line.width + 0.5:g}"{dashed}/></svg>'
            f"{html.escape(line.name)}</li>"
        )
    for band in bands:
        items.append(
            f'<li><svg width="30" height="12" aria-hidden="true"><rect width="30" height="12" '
            f'fill="{band.color}"/></svg>{html.escape(band.name)}</li>'
        )
    if decisions:
        items.append(
            '<li><svg width="30" height="12" aria-hidden="true"><line x1="15" x2="15" y1="0" '
            f'y2="12" stroke="{DECISION_COLOR}" stroke-dasharray="2 3"/></svg>decision round '
            "(number as in Decisions)</li>"
        )
    return '<ul class="legend">' + "".join(items) + "</ul>"


def value_at(points: Points, t: float) -> int:
    """The step function's value at `t` (0 before its first point)."""
    value = 0
    for at, v in points:
        if at > t:
            break
        value = v
    return value


def _band_rects(
    band: Band, end: float, *, x: Callable[[float], float], y: Callable[[float], float]
) -> list[str]:
    times = sorted({t for t, _v in band.upper} | {t for t, _v in band.lower})
    spans: list[tuple[float, float, int, int]] = []  # (start, stop, upper, lower), merged
    for start, stop in itertools.pairwise([*times, end]):
        upper, lower = value_at(band.upper, start), value_at(band.lower, start)
        if upper <= lower or stop <= start:
            continue
        if spans and spans[-1][1] == start and spans[-1][2:] == (upper, lower):
            spans[-1] = (spans[-1][0], stop, upper, lower)
        else:
            spans.append((start, stop, upper, lower))
    return [
        f'<rect class="band" x="{x(start):.1f}" y="{y(upper):.1f}" '
        f'width="{max(x(stop) - x(start), 0.5):.1f}" height="{y(lower) - y(upper):.1f}" '
        f'fill="{band.color}" shape-rendering="crispEdges"><title>{html.escape(band.name)}'
        "</title></rect>"
        for start, stop, upper, lower in spans
    ]


def _step_path(
    points: Points, end: float, *, x: Callable[[float], float], y: Callable[[float], float]
) -> str:
    commands = [f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"]
    for (_t0, v0), (t1, v1) in itertools.pairwise(points):
        if v1 != v0:  # a step: along to the change, then up or down
            commands.append(f"H{x(t1):.1f} V{y(v1):.1f}")
    commands.append(f"H{x(end):.1f}")
    return " ".join(commands)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
