"""Plots as inline SVG strings: no plotting library, no script, so they render from file:// and in any browser.

Every label goes through `escape`, since method names are user-supplied.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from markupsafe import Markup, escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22", "#aec7e8", "#ff9896", "#98df8a", "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5",
           "#393b79", "#637939")
MARKERS = ("circle", "square", "diamond")  # after the palette runs out, the next lap changes shape
W, H = 560, 340  # plotting area plus axes; the legend widens the picture to fit full names
L, T, B = 64, 24, 48
LEGEND_ROW = 16
CHAR_W = 6.6  # px per character at font-size 11, to size the legend column


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    href: str | None = None


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[Point, ...]
    line: bool = True
    hollow: bool = False
    color: str | None = None
    marker: str = "circle"
    markers: bool = True  # False: a line only (a Pareto front over other series' points, which stay visible)


def style(index: int) -> tuple[str, str]:
    """(colour, marker) of the index-th method: the same method has the same look on every page."""
    return PALETTE[index % len(PALETTE)], MARKERS[(index // len(PALETTE)) % len(MARKERS)]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis spanning 10**lo..10**hi: powers of ten, else 1-2-5, else every digit, else the ends
    (wall times of 18-47 s contain no power of ten; they get 20, 30, 40)."""
    e0, e1 = math.floor(lo) - 1, math.ceil(hi) + 1
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in mantissas
                 if lo - 1e-9 <= math.log10(m * 10.0 ** e) <= hi + 1e-9]
        if len(ticks) >= 2:
            return ticks[:: max(1, math.ceil(len(ticks) / 8))]
    return [float(f"{10 ** lo:.2g}"), float(f"{10 ** hi:.2g}")]


def _fmt_tick(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.0e}"


def _marker(shape: str, x: float, y: float, fill: str, color: str, title: str) -> str:
    inner = f"<title>{escape(title)}</title>" if title else ""
    if shape == "square":
        return (f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{fill}" stroke="{color}">'
                f'{inner}</rect>')
    if shape == "diamond":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}" '
                f'fill="{fill}" stroke="{color}">{inner}</polygon>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{fill}" stroke="{color}">{inner}</circle>'


def scatter(series: Sequence[Series], *, x_label: str, y_label: str, log_x: bool = False,
            title: str = "") -> Markup:
    """A scatter/line chart of the series: tick labels on both axes, 6% padding around the data so no marker
    is cut by the frame, a legend with each series' full name, and each point a link when it has an href."""
    def ok(p: Point) -> bool:
        return (p.x is not None and p.y is not None and math.isfinite(p.x) and math.isfinite(p.y)
                and (p.x > 0 or not log_x))

    pts = [p for s in series for p in s.points if ok(p)]
    legend_w = 36 + CHAR_W * max((len(s.name) for s in series), default=0)
    width = int(W + legend_w)
    height = max(H, T + B + LEGEND_ROW * (len(series) + 1))
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title or y_label)}" class="plot">')
    if not pts:
        return Markup(head + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="muted">'
                      f'nothing to plot yet</text></svg>')
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs, ys = [tx(p.x) for p in pts], [p.y for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - (0.5 if log_x else max(abs(x0) * 0.1, 1)), x1 + (0.5 if log_x else max(abs(x1) * 0.1, 1))
    if y1 == y0:
        y0, y1 = y0 - max(abs(y0) * 0.05, 1), y1 + max(abs(y1) * 0.05, 1)
    xpad, ypad = (x1 - x0) * 0.06, (y1 - y0) * 0.06
    x0, x1, y0, y1 = x0 - xpad, x1 + xpad, y0 - ypad, y1 + ypad
    plot_b = height - B

    def px(v: float) -> float:
        return L + (tx(v) - x0) / (x1 - x0) * (W - L - 12)

    def py(v: float) -> float:
        return plot_b - (v - y0) / (y1 - y0) * (plot_b - T)

    out = [head, f'<rect x="{L}" y="{T}" width="{W - L - 12}" height="{plot_b - T}" fill="none" stroke="#ccc"/>']
    xticks = log_ticks(x0, x1) if log_x else _nice_ticks(x0, x1)
    for v in xticks:
        if x0 - 1e-9 <= tx(v) <= x1 + 1e-9:
            out.append(f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{plot_b}" y2="{plot_b + 4}" stroke="#666"/>'
                       f'<text class="xtick" x="{px(v):.1f}" y="{plot_b + 16}" text-anchor="middle" '
                       f'font-size="11">{_fmt_tick(v)}</text>')
    for v in _nice_ticks(y0, y1):
        out.append(f'<line x1="{L - 4}" x2="{L}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#666"/>'
                   f'<text class="ytick" x="{L - 6}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="11">'
                   f'{_fmt_tick(v)}</text>')
    out.append(f'<text x="{(L + W - 12) / 2}" y="{height - 10}" text-anchor="middle" font-size="12">'
               f'{escape(x_label)}</text><text transform="translate(14 {(T + plot_b) / 2}) rotate(-90)" '
               f'text-anchor="middle" font-size="12">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        fill = "white" if s.hollow else color
        valid = sorted((p for p in s.points if ok(p)), key=lambda p: p.x)
        if s.line and len(valid) > 1:
            path = " ".join(f"{px(p.x):.1f},{py(p.y):.1f}" for p in valid)
            dash = ' stroke-dasharray="4 3"' if s.hollow else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>')
        for p in valid if s.markers else ():
            dot = _marker(s.marker, px(p.x), py(p.y), fill, color, p.label)
            out.append(f'<a class="point" href="{escape(p.href)}">{dot}</a>' if p.href else dot)
        ly = T + 10 + i * LEGEND_ROW
        dash = ' stroke-dasharray="4 3"' if s.hollow else ""
        key = (_marker(s.marker, W + 14, ly - 4, fill, color, "") if s.markers else
               f'<line x1="{W + 6}" x2="{W + 22}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" '
               f'stroke-width="1.5"{dash}/>')
        out.append(key + f'<text x="{W + 26}" y="{ly}" font-size="11">{escape(s.name)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def pareto_front(points: Iterable[Point]) -> list[Point]:
    """Points no other point beats on both cost (x, lower is better) and score (y, higher is better)."""
    front, best = [], -math.inf
    for p in sorted(points, key=lambda p: (p.x, -p.y)):
        if p.y > best:
            front.append(p)
            best = p.y
    return front
