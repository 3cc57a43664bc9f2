"""Charts as inline SVG: a few shapes, drawn from numbers, nothing fetched.

Each function returns one ``<svg>`` element (``class="plot"``) sized by its
``viewBox`` so it scales with the page. Every mark carries a ``<title>`` (the
browser shows it on hover; no script needed). An empty series draws a
labelled empty frame, never nothing, so a reader sees the chart is empty.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
OK, BAD, MUTED = "#59a14f", "#e15759", "#c9ced6"
FONT = 'font-family="system-ui, sans-serif" font-size="11" fill="#333"'


def _svg(width: int, height: int, label: str, body: list[str], empty: bool = False) -> str:
    attrs = ' data-empty="1"' if empty else ""
    return (
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{escape(label)}"{attrs}'
        f' xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _empty(width: int, height: int, label: str) -> str:
    return _svg(
        width,
        height,
        label,
        [
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none"'
            f' stroke="{MUTED}"/>',
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT}>no data</text>',
        ],
        empty=True,
    )


def nice_max(value: float) -> float:
    """A round axis top at or above ``value`` (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _ticks(top: float) -> int:
    """4 intervals, or 5 where a quarter of ``top`` is not round (250 -> 50s)."""
    quarter = top / 4
    lead = round(quarter / 10 ** math.floor(math.log10(quarter)), 6)
    return 4 if lead in (1, 2, 2.5, 5) else 5


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:g}"


def columns(
    labels: Sequence[str],
    values: Sequence[float],
    label: str,
    tips: Sequence[str] | None = None,
    faded: Sequence[bool] | None = None,
    every: int = 1,
    width: int = 720,
    height: int = 220,
) -> str:
    """Vertical bars over a category axis (days, weeks); ``faded`` bars are lighter."""
    if not values or max(values) <= 0:
        return _empty(width, height, label)
    left, right, top, bottom = 44, 8, 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_max(max(values))
    step = plot_w / len(values)
    bar = max(step * 0.75, 1.0)
    body = []
    n = _ticks(top_value)
    for i in range(n + 1):  # grid and y ticks
        v = top_value * i / n
        y = top + plot_h - plot_h * i / n
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{_num(v)}</text>'
        )
    for i, (name, v) in enumerate(zip(labels, values)):
        h = plot_h * v / top_value
        x = left + i * step + (step - bar) / 2
        y = top + plot_h - h
        color = MUTED if faded and faded[i] else PALETTE[0]
        tip = tips[i] if tips else f"{name}: {_num(v)}"
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0):.1f}"'
            f' fill="{color}"><title>{escape(tip)}</title></rect>'
        )
        if i % every == 0:
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle"'
                f" {FONT}>{escape(name)}</text>"
            )
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}"'
        ' stroke="#999"/>'
    )
    return _svg(width, height, label, body)


def stacked_share(
    labels: Sequence[str],
    series: dict[str, Sequence[int]],
    label: str,
    every: int = 1,
    width: int = 720,
    height: int = 240,
) -> str:
    """100 % stacked columns: each column split by ``series`` (e.g. versions)."""
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    if not labels or not any(totals):
        return _empty(width, height, label)
    left, right, top, bottom, legend = 44, 8, 10, 34, 22
    plot_w, plot_h = width - left - right, height - top - bottom - legend
    step = plot_w / len(labels)
    bar = max(step * 0.85, 1.0)
    body = []
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{25 * i}%</text>'
        )
    names = list(series)
    for i, name in enumerate(labels):
        if not totals[i]:
            continue
        x = left + i * step + (step - bar) / 2
        y = top + plot_h
        for k, s in enumerate(names):
            v = series[s][i]
            if not v:
                continue
            h = plot_h * v / totals[i]
            y -= h
            tip = f"{name}: {s} on {v} of {totals[i]} installs ({100 * v / totals[i]:.0f}%)"
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"'
                f' fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0:
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle"'
                f" {FONT}>{escape(name)}</text>"
            )
    lx = left
    for k, s in enumerate(names):
        body.append(
            f'<rect x="{lx}" y="{height - 14}" width="10" height="10"'
            f' fill="{PALETTE[k % len(PALETTE)]}"/>'
            f'<text x="{lx + 14}" y="{height - 5}" {FONT}>{escape(s)}</text>'
        )
        lx += 24 + 7 * len(s)
    return _svg(width, height, label, body)


def hbars(
    items: Sequence[tuple[str, float, str]],
    label: str,
    width: int = 360,
    row: int = 22,
    label_w: int = 110,
    color: str = PALETTE[0],
    text_w: int = 90,
) -> str:
    """Horizontal bars: (name, value, text shown after the bar in ``text_w``)."""
    if not items or max(v for _, v, _ in items) <= 0:
        return _empty(width, 60, label)
    height = row * len(items) + 8
    top_value = max(v for _, v, _ in items)
    plot_w = width - label_w - text_w
    body = []
    for i, (name, v, text) in enumerate(items):
        y = 4 + i * row
        w = plot_w * v / top_value
        body.append(
            f'<text x="{label_w - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end" {FONT}>'
            f"{escape(_short(name, label_w // 7))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 6}"'
            f' fill="{color}"><title>{escape(name)}: {escape(text)}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + row / 2 + 4:.1f}" {FONT}>'
            f"{escape(text)}</text>"
        )
    return _svg(width, height, label, body)


def split_bars(
    items: Sequence[tuple[str, int, int]],
    label: str,
    width: int = 720,
    row: int = 24,
    label_w: int = 120,
) -> str:
    """Horizontal bars of (name, good, bad): good in green, bad in red after it."""
    if not items or max(g + b for _, g, b in items) <= 0:
        return _empty(width, 60, label)
    height = row * len(items) + 26
    top_value = max(g + b for _, g, b in items)
    plot_w = width - label_w - 150
    body = []
    for i, (name, good, bad) in enumerate(items):
        y = 4 + i * row
        wg, wb = plot_w * good / top_value, plot_w * bad / top_value
        total = good + bad
        share = 100 * good / total if total else 0
        body.append(
            f'<text x="{label_w - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end" {FONT}>'
            f"{escape(_short(name, label_w // 7))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{max(wg, 0):.1f}" height="{row - 6}"'
            f' fill="{OK}"><title>{escape(name)}: {good:,} succeeded</title></rect>'
            f'<rect x="{label_w + wg:.1f}" y="{y + 3}" width="{max(wb, 0):.1f}"'
            f' height="{row - 6}" fill="{BAD}"><title>{escape(name)}: {bad:,} failed</title></rect>'
            f'<text x="{label_w + wg + wb + 4:.1f}" y="{y + row / 2 + 4:.1f}" {FONT}>'
            f"{total:,} calls, {share:.1f}% ok</text>"
        )
    y = height - 8
    body.append(
        f'<rect x="{label_w}" y="{y - 9}" width="10" height="10" fill="{OK}"/>'
        f'<text x="{label_w + 14}" y="{y}" {FONT}>succeeded</text>'
        f'<rect x="{label_w + 90}" y="{y - 9}" width="10" height="10" fill="{BAD}"/>'
        f'<text x="{label_w + 104}" y="{y}" {FONT}>failed</text>'
    )
    return _svg(width, height, label, body)


def log_pairs(
    items: Sequence[tuple[str, float | None, float | None]],
    label: str,
    unit: str = "ms",
    width: int = 720,
    row: int = 30,
    label_w: int = 120,
) -> str:
    """Two bars per row (p50, p95) on a log scale: durations span decades."""
    found = [v for _, a, b in items for v in (a, b) if v is not None and v > 0]
    if not found:
        return _empty(width, 60, label)
    lo = 10 ** math.floor(math.log10(min(found)))
    hi = 10 ** math.ceil(math.log10(max(found)))
    if hi <= lo:
        hi = lo * 10
    plot_w = width - label_w - 90
    height = row * len(items) + 40

    def x(v: float) -> float:
        return label_w + plot_w * (math.log10(v) - math.log10(lo)) / (
            math.log10(hi) - math.log10(lo)
        )

    body = []
    tick = lo
    while tick <= hi * 1.0001:
        body.append(
            f'<line x1="{x(tick):.1f}" y1="2" x2="{x(tick):.1f}" y2="{height - 30}"'
            ' stroke="#eee"/>'
            f'<text x="{x(tick):.1f}" y="{height - 18}" text-anchor="middle" {FONT}>'
            f"{_num(tick)} {unit}</text>"
        )
        tick *= 10
    for i, (name, p50, p95) in enumerate(items):
        y = 4 + i * row
        body.append(
            f'<text x="{label_w - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end" {FONT}>'
            f"{escape(_short(name, label_w // 7))}</text>"
        )
        for k, (what, v) in enumerate((("p50", p50), ("p95", p95))):
            if v is None or v <= 0:
                continue
            yy = y + 3 + k * (row - 6) / 2
            body.append(
                f'<rect x="{label_w}" y="{yy:.1f}" width="{max(x(v) - label_w, 1):.1f}"'
                f' height="{(row - 8) / 2:.1f}" fill="{PALETTE[k]}">'
                f"<title>{escape(name)} {what}: {v:,.1f} {unit}</title></rect>"
            )
        if p95 is not None and p95 > 0:
            body.append(
                f'<text x="{x(p95) + 4:.1f}" y="{y + row / 2 + 4:.1f}" {FONT}>'
                f"{_num(p50 or 0)} / {_num(p95)} {unit}</text>"
            )
    y = height - 4
    body.append(
        f'<rect x="{label_w}" y="{y - 9}" width="10" height="10" fill="{PALETTE[0]}"/>'
        f'<text x="{label_w + 14}" y="{y}" {FONT}>p50</text>'
        f'<rect x="{label_w + 60}" y="{y - 9}" width="10" height="10" fill="{PALETTE[1]}"/>'
        f'<text x="{label_w + 74}" y="{y}" {FONT}>p95</text>'
    )
    return _svg(width, height, label, body)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(n - 1, 1)] + "…"
