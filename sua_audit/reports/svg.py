"""Small inline SVG plots for the HTML report: no JavaScript, no external files.

Each function returns one ``<svg>`` element as a string. Every text that reaches the SVG is
escaped here, so callers may pass labels that came from datasets or models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from sua_audit.numbers import tick

WIDTH, HEIGHT = 440, 300
LEFT, RIGHT, TOP, BOTTOM = 54, 16, 30, 46
#: Colour-blind-safe palette (Okabe–Ito), in series order.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


class _Frame:
    """Maps data coordinates into the plot area and draws axes."""

    def __init__(
        self,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        *,
        title: str,
        x_label: str,
        y_label: str,
        plot_id: str,
        legend_width: int = 0,
    ) -> None:
        x0, x1 = xlim
        y0, y1 = ylim
        self.xlim = (x0, x1 if x1 > x0 else x0 + 1.0)
        self.ylim = (y0, y1 if y1 > y0 else y0 + 1.0)
        self.parts: list[str] = []
        self.plot_id = plot_id
        self.title = title
        self.x_label = x_label
        self.y_label = y_label
        # Extra room on the right for a legend kept clear of the data.
        self.legend_width = legend_width
        self.width = WIDTH + legend_width

    def x(self, value: float) -> float:
        lo, hi = self.xlim
        return LEFT + (value - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        lo, hi = self.ylim
        return HEIGHT - BOTTOM - (value - lo) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    def axes(self, *, x_ticks: Sequence[tuple[float, str]] | None = None) -> None:
        p = self.parts
        for t in _ticks(*self.ylim):
            yy = self.y(t)
            p.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>'
            )
            p.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{tick(t)}</text>')
        ticks = x_ticks if x_ticks is not None else [(t, tick(t)) for t in _ticks(*self.xlim)]
        for t, label in ticks:
            xx = self.x(t)
            p.append(
                f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{HEIGHT - BOTTOM}" '
                f'y2="{HEIGHT - BOTTOM + 4}" class="axis"/>'
            )
            p.append(
                f'<text x="{xx:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
        p.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" '
            f'y2="{HEIGHT - BOTTOM}" class="axis"/>'
        )
        p.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" class="axis"/>')
        p.append(
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle" class="label">{escape(self.x_label)}</text>'
        )
        cy = (TOP + HEIGHT - BOTTOM) / 2
        p.append(
            f'<text x="14" y="{cy:.1f}" text-anchor="middle" class="label" '
            f'transform="rotate(-90 14 {cy:.1f})">{escape(self.y_label)}</text>'
        )

    def legend(self, names: Sequence[str]) -> None:
        for i, name in enumerate(names):
            xx = WIDTH - RIGHT - 118 if not self.legend_width else WIDTH + 4
            yy = TOP + 6 + 14 * i
            colour = PALETTE[i % len(PALETTE)]
            self.parts.append(
                f'<rect x="{xx}" y="{yy - 8}" width="10" height="10" fill="{colour}"/>'
                f'<text x="{xx + 14}" y="{yy + 1}">{escape(name)}</text>'
            )

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="{escape(self.plot_id)}" '
            f'viewBox="0 0 {self.width} {HEIGHT}" width="{self.width}" height="{HEIGHT}" '
            f'role="img" aria-label="{escape(self.title)}"><title>{escape(self.title)}</title>'
            f'<text x="{LEFT}" y="18" class="title">{escape(self.title)}</text>'
            + "".join(self.parts)
            + "</svg>"
        )


def empty(plot_id: str, title: str, why: str) -> str:
    """A placeholder plot saying why there is nothing to draw."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot empty" id="{escape(plot_id)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="{LEFT}" y="18" class="title">{escape(title)}</text>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">{escape(why)}</text></svg>'
    )


def lines(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    plot_id: str,
    title: str,
    x_label: str,
    y_label: str,
) -> str:
    """One polyline per series (e.g. risk–coverage per score), x and y in [0, 1]."""
    if not series:
        return empty(plot_id, title, "no labelled items")
    top = max((y for pts in series.values() for _, y in pts), default=1.0)
    frame = _Frame(
        (0.0, 1.0),
        (0.0, max(0.05, min(1.0, top * 1.1))),
        title=title,
        x_label=x_label,
        y_label=y_label,
        plot_id=plot_id,
        legend_width=120,
    )
    frame.axes()
    for i, pts in enumerate(series.values()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in pts)
        frame.parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2" '
            'class="series"/>'
        )
    frame.legend(list(series))
    return frame.svg()


def bars(
    values: Sequence[tuple[str, float]],
    *,
    plot_id: str,
    title: str,
    x_label: str,
    y_label: str,
) -> str:
    """A bar per category (e.g. mean sensitivity per perturbation kind)."""
    if not values:
        return empty(plot_id, title, "nothing to show")
    top = max(v for _, v in values)
    n = len(values)
    frame = _Frame(
        (0.0, float(n)),
        (0.0, top * 1.1 if top > 0 else 1.0),
        title=title,
        x_label=x_label,
        y_label=y_label,
        plot_id=plot_id,
    )
    frame.axes(x_ticks=[(i + 0.5, name) for i, (name, _) in enumerate(values)])
    for i, (name, value) in enumerate(values):
        x0, x1 = frame.x(i + 0.15), frame.x(i + 0.85)
        y0 = frame.y(max(value, 0.0))
        frame.parts.append(
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
            f'height="{frame.y(0) - y0:.1f}" fill="{PALETTE[0]}" class="bar">'
            f"<title>{escape(name)}: {tick(value)}</title></rect>"
        )
    return frame.svg()


def reliability(bins: Sequence[dict[str, object]], *, plot_id: str, title: str) -> str:
    """Reliability diagram: accuracy per confidence bin against the diagonal."""
    drawn = [b for b in bins if isinstance(b.get("accuracy"), int | float)]
    if not drawn:
        return empty(plot_id, title, "no labelled items")
    frame = _Frame(
        (0.0, 1.0),
        (0.0, 1.0),
        title=title,
        x_label="confidence (max p)",
        y_label="accuracy",
        plot_id=plot_id,
    )
    frame.axes()
    for b in drawn:
        lo, hi = float(b["lo"]), float(b["hi"])  # type: ignore[arg-type]
        acc = float(b["accuracy"])  # type: ignore[arg-type]
        x0, x1 = frame.x(lo) + 1, frame.x(hi) - 1
        y0 = frame.y(acc)
        frame.parts.append(
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{frame.y(0) - y0:.1f}" fill="{PALETTE[0]}" opacity="0.8" class="bar">'
            f"<title>{tick(lo)}–{tick(hi)}: accuracy {tick(acc)}, n = {b.get('count')}</title>"
            "</rect>"
        )
    frame.parts.append(
        f'<line x1="{frame.x(0):.1f}" y1="{frame.y(0):.1f}" x2="{frame.x(1):.1f}" '
        f'y2="{frame.y(1):.1f}" stroke="{PALETTE[1]}" stroke-dasharray="5 4" class="ref"/>'
    )
    return frame.svg()


def scatter_sh(
    points: Sequence[tuple[float, float, str]],
    *,
    lam: float,
    tau: float,
    plot_id: str,
    title: str,
    is_rule: bool = True,
) -> str:
    """S against H, coloured by correctness, with the line SUA = τ (S = λH + τ).

    ``is_rule``: the line is the run's abstention rule (items above it abstain); otherwise it
    is drawn as a reference only (the run abstained on another score).
    """
    if not points:
        return empty(plot_id, title, "no scored items")
    h_max = max(max(h for h, _, _ in points), 0.05) * 1.08
    s_top = max(max(s for _, s, _ in points), lam * h_max + tau, 0.05) * 1.08
    frame = _Frame(
        (0.0, h_max),
        (0.0, s_top),
        title=title,
        x_label="H (entropy, nats)",
        y_label="S (sensitivity)",
        plot_id=plot_id,
        legend_width=130,
    )
    frame.axes()
    # SUA = τ  ⇔  S = λ·H + τ, clipped to the frame.
    h0 = max(0.0, -tau / lam) if lam > 0 else 0.0
    frame.parts.append(
        f'<line x1="{frame.x(h0):.1f}" y1="{frame.y(lam * h0 + tau):.1f}" '
        f'x2="{frame.x(h_max):.1f}" y2="{frame.y(min(lam * h_max + tau, s_top)):.1f}" '
        f'stroke="{PALETTE[1]}" stroke-width="1.5" stroke-dasharray="6 4" class="tau-line"/>'
    )
    colours = {"correct": PALETTE[2], "wrong": PALETTE[1], "unknown": "#888888"}
    for h, s, cls in points:
        frame.parts.append(
            f'<circle cx="{frame.x(h):.1f}" cy="{frame.y(s):.1f}" r="3.5" '
            f'fill="{colours.get(cls, "#888888")}" fill-opacity="0.75" class="point {cls}"/>'
        )
    legend_x = WIDTH + 4
    frame.parts.append(
        f'<line x1="{legend_x}" x2="{legend_x + 14}" y1="{TOP + 2}" y2="{TOP + 2}" '
        f'stroke="{PALETTE[1]}" stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<text x="{legend_x + 18}" y="{TOP + 6}">SUA = {"τ = " if is_rule else ""}'
        f"{tick(tau)}</text>"
        f'<text x="{legend_x + 18}" y="{TOP + 18}" class="note">'
        f"{'above: abstain' if is_rule else 'reference only'}</text>"
    )
    present = [c for c in ("correct", "wrong", "unknown") if any(p[2] == c for p in points)]
    for i, cls in enumerate(present):
        yy = TOP + 38 + 14 * i
        frame.parts.append(
            f'<circle cx="{legend_x + 7}" cy="{yy - 3}" r="4" fill="{colours[cls]}"/>'
            f'<text x="{legend_x + 18}" y="{yy + 1}">{cls}</text>'
        )
    return frame.svg()


def histogram(
    values: Sequence[float],
    *,
    marker: float | None,
    plot_id: str,
    title: str,
    x_label: str,
) -> str:
    """Histogram with a vertical marker (a score's histogram with τ); no marker when ``None``."""
    if not values:
        return empty(plot_id, title, "no scored items")
    marks = [] if marker is None else [marker]
    lo, hi = min([*values, *marks]), max([*values, *marks])
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    n_bins = max(5, min(30, int(math.sqrt(len(values)) * 2)))
    width = (hi - lo) / n_bins
    counts = [0] * n_bins
    for v in values:
        counts[min(n_bins - 1, int((v - lo) / width))] += 1
    frame = _Frame(
        (lo, hi),
        (0.0, max(counts) * 1.15),
        title=title,
        x_label=x_label,
        y_label="items",
        plot_id=plot_id,
    )
    frame.axes()
    for i, count in enumerate(counts):
        if not count:
            continue
        x0, x1 = frame.x(lo + i * width) + 0.5, frame.x(lo + (i + 1) * width) - 0.5
        y0 = frame.y(count)
        frame.parts.append(
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{frame.y(0) - y0:.1f}" fill="{PALETTE[0]}" class="bar"/>'
        )
    if marker is not None:
        xm = frame.x(marker)
        frame.parts.append(
            f'<line x1="{xm:.1f}" x2="{xm:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
            f'stroke="{PALETTE[1]}" stroke-width="1.5" stroke-dasharray="6 4" class="tau-line"/>'
            f'<text x="{xm + 4:.1f}" y="{TOP + 10}" class="note">τ = {tick(marker)}</text>'
        )
    return frame.svg()
