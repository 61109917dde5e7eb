"""Plots as inline SVG strings: no plotting library, no script, so they render from file:// and in any browser.

Every label goes through `escape`, since method names are user-supplied.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from markupsafe import Markup, escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")
W, H = 640, 360
L, R, T, B = 60, 170, 20, 45


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


def _fmt_tick(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.0e}"


def scatter(series: Sequence[Series], *, x_label: str, y_label: str, log_x: bool = False,
            title: str = "") -> Markup:
    """A scatter/line chart of the series; an empty chart says there is nothing to plot."""
    def ok(p: Point) -> bool:
        return (p.x is not None and p.y is not None and math.isfinite(p.x) and math.isfinite(p.y)
                and (p.x > 0 or not log_x))

    pts = [p for s in series for p in s.points if ok(p)]
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img" aria-label="{escape(title or y_label)}" class="plot">')
    if not pts:
        return Markup(head + f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" class="muted">'
                      f'nothing to plot yet</text></svg>')
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs, ys = [tx(p.x) for p in pts], [p.y for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(v: float) -> float:
        return L + (tx(v) - x0) / (x1 - x0) * (W - L - R)

    def py(v: float) -> float:
        return H - B - (v - y0) / (y1 - y0) * (H - T - B)

    out = [head, f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#ccc"/>']
    xticks = [10 ** e for e in range(math.floor(x0), math.ceil(x1) + 1)] if log_x else _nice_ticks(x0, x1)
    for v in xticks:
        if x0 - 1e-9 <= tx(v) <= x1 + 1e-9:
            out.append(f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{H - B}" y2="{H - B + 4}" stroke="#666"/>'
                       f'<text x="{px(v):.1f}" y="{H - B + 16}" text-anchor="middle" font-size="11">'
                       f'{_fmt_tick(v)}</text>')
    for v in _nice_ticks(y0, y1):
        out.append(f'<line x1="{L - 4}" x2="{L}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#666"/>'
                   f'<text x="{L - 6}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="11">{_fmt_tick(v)}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 8}" text-anchor="middle" font-size="12">{escape(x_label)}'
               f'</text><text transform="translate(14 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle" '
               f'font-size="12">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        valid = sorted((p for p in s.points if ok(p)), key=lambda p: p.x)
        if s.line and len(valid) > 1:
            path = " ".join(f"{px(p.x):.1f},{py(p.y):.1f}" for p in valid)
            dash = ' stroke-dasharray="4 3"' if s.hollow else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>')
        for p in valid:
            fill = "white" if s.hollow else color
            dot = (f'<circle cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="4" fill="{fill}" stroke="{color}">'
                   f'<title>{escape(p.label)}</title></circle>')
            out.append(f'<a href="{escape(p.href)}">{dot}</a>' if p.href else dot)
        if i < 14:
            ly = T + 14 + i * 16
            out.append(f'<circle cx="{W - R + 14}" cy="{ly - 4}" r="4" fill="{"white" if s.hollow else color}" '
                       f'stroke="{color}"/><text x="{W - R + 24}" y="{ly}" font-size="11">'
                       f'{escape(s.name[:24])}</text>')
    if len(series) > 14:
        out.append(f'<text x="{W - R + 10}" y="{T + 14 + 14 * 16}" font-size="11">… {len(series) - 14} more'
                   f'</text>')
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
