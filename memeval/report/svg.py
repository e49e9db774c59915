"""Small inline SVG charts: no script, no network, every label escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
W, H = 420, 280
LEFT, RIGHT, BOTTOM = 56, 16, 44
TOP = 60  # title, then up to three rows of legend


@dataclass
class Series:
    """One line or set of points: (x, y) with an optional (low, high) interval per point."""

    name: str
    points: list[tuple[float, float]]
    intervals: list[tuple[float, float]] = field(default_factory=list)
    dashed: bool = False
    colour: int | None = None  # palette index; series sharing a name should share it


def _fmt(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:g}" if v == int(v) or abs(v) >= 100 else f"{v:.2f}"


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 × 10^k) covering [low, high], at most `most`."""
    if not high > low:
        return [low]
    def span(step: float) -> tuple[int, int]:
        return math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)

    base = 10 ** math.floor(math.log10((high - low) / max(most - 1, 1)))
    step = next(base * f for f in (1, 2, 5, 10, 20)
                if span(base * f)[1] - span(base * f)[0] + 1 <= most)
    first, last = span(step)
    return [round(k * step, 12) for k in range(first, last + 1)]


def short(name: str, most: int) -> str:
    """`name` cut to `most` characters, with an ellipsis when it was cut."""
    return name if len(name) <= most else name[:most - 1] + "…"


class _Frame:
    """Data ranges widened to round ticks, so that axes read 0, 100, 200, not 105.265."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], y_range: tuple[float, float] | None):
        self.x_ticks = nice_ticks(*((min(xs), max(xs)) if xs else (0.0, 1.0)))
        if len(self.x_ticks) == 1:
            self.x_ticks = [self.x_ticks[0] - 1, self.x_ticks[0], self.x_ticks[0] + 1]
        self.x0, self.x1 = self.x_ticks[0], self.x_ticks[-1]
        self.y_ticks = nice_ticks(*(y_range or ((min(ys), max(ys)) if ys else (0.0, 1.0))))
        if len(self.y_ticks) == 1:
            self.y_ticks = [self.y_ticks[0] - 1, self.y_ticks[0], self.y_ticks[0] + 1]
        self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]

    def x(self, v: float) -> float:
        return LEFT + (v - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return H - BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)


def _axes(f: _Frame, title: str, x_label: str, y_label: str,
          x_ticks: Sequence[tuple[float, str]] | None = None) -> list[str]:
    out = [f'<text x="{W / 2}" y="15" text-anchor="middle" class="t">{escape(title)}</text>',
           f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" class="ax"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" class="ax"/>',
           f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle">{escape(x_label)}</text>',
           f'<text x="12" y="{H / 2}" text-anchor="middle" transform="rotate(-90 12 {H / 2})">'
           f'{escape(y_label)}</text>']
    ticks = x_ticks or [(v, _fmt(v)) for v in f.x_ticks]
    for v, label in ticks:
        out.append(f'<text x="{f.x(v):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">'
                   f'{escape(label)}</text>')
    for v in f.y_ticks:
        out.append(f'<text x="{LEFT - 4}" y="{f.y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
        out.append(f'<line x1="{LEFT}" y1="{f.y(v):.1f}" x2="{W - RIGHT}" y2="{f.y(v):.1f}" '
                   'class="grid"/>')
    return out


def _legend(entries: Sequence[tuple[str, int]]) -> list[str]:
    out = []
    unique = list(dict.fromkeys(entries))
    # three columns of short names, two of longer ones: a label is cut only past its column
    columns = 3 if all(len(name) <= 20 for name, _ in unique) else 2
    width, most = (W - LEFT - RIGHT) / columns, 20 if columns == 3 else 30
    for k, (name, colour) in enumerate(unique):
        if k == 3 * columns:
            out.append(f'<text x="{LEFT}" y="{24 + 3 * 12}">…</text>')
            break
        x, y = LEFT + (k % columns) * width, 28 + (k // columns) * 12
        out.append(f'<rect x="{x:.0f}" y="{y - 5}" width="10" height="3" '
                   f'fill="{PALETTE[colour % 10]}"/><text x="{x + 14:.0f}" y="{y}">'
                   f'{escape(short(name, most))}<title>{escape(name)}</title></text>')
    return out


def _svg(parts: list[str], label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{escape(label)}">' + "".join(parts) + "</svg>")


def line_chart(title: str, series: Sequence[Series], x_label: str, y_label: str,
               y_range: tuple[float, float] | None = None,
               x_ticks: Sequence[tuple[float, str]] | None = None) -> str:
    """Lines with points and interval whiskers."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points] + [v for s in series for iv in s.intervals for v in iv]
    f = _Frame(xs, ys, y_range)
    parts = _axes(f, title, x_label, y_label, x_ticks)
    for i, s in enumerate(series):
        color = PALETTE[(i if s.colour is None else s.colour) % 10]
        path = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y in s.points)
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for k, (x, y) in enumerate(s.points):
            parts.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="3" fill="{color}">'
                         f'<title>{escape(s.name)}: {_fmt(x)}, {y:.3g}</title></circle>')
            if k < len(s.intervals):
                low, high = s.intervals[k]
                parts.append(f'<line x1="{f.x(x):.1f}" y1="{f.y(low):.1f}" x2="{f.x(x):.1f}" '
                             f'y2="{f.y(high):.1f}" stroke="{color}" opacity="0.5"/>')
    parts += _legend([(s.name, i if s.colour is None else s.colour) for i, s in enumerate(series)])
    return _svg(parts, title)


def scatter(title: str, points: Sequence[tuple[str, float, float]], x_label: str, y_label: str,
            frontier: Sequence[str] = ()) -> str:
    """Labelled points; the names in `frontier` are joined by a line (the Pareto frontier)."""
    xs = [x for _, x, _ in points]
    pad = (max(xs) - min(xs)) * 0.15 if len(xs) > 1 and max(xs) > min(xs) else 1.0
    f = _Frame([min(xs, default=0) - pad, max(xs, default=1) + pad], [0.0, 1.0], (0.0, 1.0))
    parts = _axes(f, title, x_label, y_label)
    on = sorted((x, y) for name, x, y in points if name in frontier)
    if len(on) > 1:
        path = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y in on)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#444" stroke-dasharray="4 3"/>')
    for i, (name, x, y) in enumerate(points):
        color = PALETTE[i % 10]
        parts.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="5" fill="{color}">'
                     f'<title>{escape(name)}: {_fmt(x)} tokens, {y:.3f}</title></circle>'
                     f'<text x="{f.x(x):.1f}" y="{f.y(y) - 8:.1f}" text-anchor="middle">'
                     f'{escape(short(name, 28))}</text>')
    return _svg(parts, title)


def bars(title: str, rows: Sequence[tuple[str, float, float, float]], x_label: str) -> str:
    """Horizontal bars of rates in [0, 1] with their intervals: (name, value, low, high)."""
    height = TOP + 20 + 22 * max(len(rows), 1) + 30
    left = 150
    span = W - left - RIGHT
    parts = [f'<text x="{W / 2}" y="15" text-anchor="middle" class="t">{escape(title)}</text>']
    for i, (name, value, low, high) in enumerate(rows):
        y = TOP + 10 + 22 * i
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">'
                     f'{escape(short(name, 22))}<title>{escape(name)}</title></text>'
                     f'<rect x="{left}" y="{y}" width="{value * span:.1f}" height="15" '
                     f'fill="{PALETTE[i % 10]}"><title>{escape(name)}: {value:.3f}</title></rect>'
                     f'<line x1="{left + low * span:.1f}" y1="{y + 7}" x2="{left + high * span:.1f}" '
                     f'y2="{y + 7}" stroke="#000" opacity="0.6"/>'
                     f'<text x="{left + value * span + 4:.1f}" y="{y + 12}">{value:.2f}</text>')
    parts.append(f'<text x="{left + span / 2}" y="{height - 8}" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    return (f'<svg class="chart" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
            f'role="img" aria-label="{escape(title)}">' + "".join(parts) + "</svg>")
