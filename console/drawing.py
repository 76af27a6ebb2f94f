"""Server-side SVG: the cascade of a rollback as a layered graph, and the bar charts of the metrics page.

Drawn in Python so the pages need no JavaScript and a screenshot shows exactly what the server knows.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from policies.labels import label as label_of

# Step outcome -> (fill, stroke, text) colours, matching the badges.
OUTCOME_COLOURS: dict[str, tuple[str, str, str]] = {
    "reversed": ("#e3f5eb", "#1a7f4b", "#0f5132"),
    "already_reversed": ("#e3f5eb", "#1a7f4b", "#0f5132"),
    "manual_done": ("#e3f5eb", "#1a7f4b", "#0f5132"),
    "pending": ("#eef1f6", "#8a94a6", "#384254"),
    "awaiting_confirmation": ("#e6edfc", "#2457c5", "#1c3f8f"),
    "compensation_failed": ("#fff1d6", "#a15c00", "#6b3d00"),
    "prerequisites_unmet": ("#fff1d6", "#a15c00", "#6b3d00"),
    "loop_stopped": ("#fff1d6", "#a15c00", "#6b3d00"),
    "not_reversible": ("#fde7e4", "#b42318", "#7a1710"),
    "failed": ("#fde7e4", "#b42318", "#7a1710"),
}
NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 190, 58, 44, 16, 12
# The widest drawing a 1280 px page shows without scrolling (five levels); a wider one gets a visible cue.
FITS_WIDTH = 1180


@dataclass(frozen=True)
class GraphNode:
    key: int  # the step id
    parent: int | None  # the step it was reached from
    depth: int
    title: str
    subtitle: str
    outcome: str
    href: str = ""
    dashed: bool = False  # a loop arrival


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Level:
    """One column of the drawing as text, for the list under it: what a reader would otherwise have to scroll to."""

    depth: int
    steps: int
    outcomes: list[tuple[str, int]]  # outcome -> steps, most first
    loops: int  # loop arrivals (dashed boxes)


def cascade_width(depth_count: int) -> int:
    return PAD * 2 + depth_count * NODE_W + max(0, depth_count - 1) * COL_GAP


def cascade_levels(nodes: Sequence[GraphNode]) -> list[Level]:
    by_depth: dict[int, list[GraphNode]] = {}
    for node in nodes:
        by_depth.setdefault(node.depth, []).append(node)
    return [
        Level(
            depth=depth,
            steps=len(level),
            outcomes=Counter(node.outcome for node in level).most_common(),
            loops=sum(1 for node in level if node.dashed),
        )
        for depth, level in sorted(by_depth.items())
    ]


def fits(levels: Sequence[Level]) -> bool:
    """Whether the drawing of these levels fits a 1280 px page; if not, the page says it scrolls and how far."""
    return cascade_width(len(levels)) <= FITS_WIDTH


def cascade_svg(nodes: Sequence[GraphNode], *, authorized_depth: int | None = None) -> SafeString:
    """Columns by depth, one row per step in the order given; an edge from each step to the one it came from.
    A dashed line marks the authorized depth: steps beyond it wait for a confirmation."""
    if not nodes:
        return mark_safe("")
    rows: dict[int, int] = {}
    position: dict[int, tuple[int, int]] = {}
    for node in nodes:
        row = rows.get(node.depth, 0)
        rows[node.depth] = row + 1
        position[node.key] = (PAD + node.depth * (NODE_W + COL_GAP), PAD + 18 + row * (NODE_H + ROW_GAP))
    depth_count = max(rows) + 1
    width = cascade_width(depth_count)
    height = PAD * 2 + 18 + max(rows.values()) * (NODE_H + ROW_GAP) - ROW_GAP + 16  # room for the depth caption
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="Cascade of this rollback">'
    ]
    for depth in range(depth_count):
        x = PAD + depth * (NODE_W + COL_GAP)
        label = "targets" if depth == 0 else f"depth {depth}"
        parts.append(f'<text x="{x}" y="{PAD + 8}" font-size="11" fill="#5b6474">{label}</text>')
    if authorized_depth is not None and authorized_depth + 1 < depth_count:
        line_x = PAD + (authorized_depth + 1) * (NODE_W + COL_GAP) - COL_GAP / 2
        parts.append(
            f'<line x1="{line_x}" y1="{PAD}" x2="{line_x}" y2="{height - PAD}" stroke="#2457c5" '
            'stroke-dasharray="4 4"/>'
            f'<text x="{line_x + 4}" y="{height - 4}" font-size="10" fill="#2457c5">beyond: awaits confirmation</text>'
        )
    for node in nodes:
        if node.parent is None or node.parent not in position:
            continue
        px, py = position[node.parent]
        x, y = position[node.key]
        x1, y1, x2, y2 = px + NODE_W, py + NODE_H / 2, x, y + NODE_H / 2
        mid = (x1 + x2) / 2
        dash = ' stroke-dasharray="5 4"' if node.dashed else ""
        parts.append(
            f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" stroke="#9aa4b5" '
            f'stroke-width="1.5"{dash}/>'
        )
    for node in nodes:
        x, y = position[node.key]
        fill, stroke, ink = OUTCOME_COLOURS.get(node.outcome, OUTCOME_COLOURS["pending"])
        dash = ' stroke-dasharray="5 4"' if node.dashed else ""
        box = (
            f'<g class="node" data-outcome="{escape(node.outcome)}">'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="7" fill="{fill}" stroke="{stroke}"{dash}/>'
            f'<text x="{x + 10}" y="{y + 18}" font-size="12.5" font-weight="600" fill="#1d2433">'
            f"{escape(_clip(node.title, 26))}</text>"
            f'<text x="{x + 10}" y="{y + 34}" font-size="11" fill="#5b6474">{escape(_clip(node.subtitle, 30))}</text>'
            f'<text x="{x + 10}" y="{y + 50}" font-size="11" font-weight="600" fill="{ink}">'
            f"{escape(label_of(node.outcome).lower())}</text></g>"
        )
        if node.href:
            box = f'<a href="{escape(node.href)}">{box}</a>'
        parts.append(box)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above went through escape()


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    caption: str  # what is written at the end of the bar ("3 of 40 · 7.5%")


def bar_chart_svg(
    bars: Sequence[Bar], *, title: str, maximum: float | None = None, colour: str = "#2457c5"
) -> SafeString:
    """Horizontal bars, one per row, longest scale = `maximum` (or the largest value)."""
    if not bars:
        return mark_safe(f'<p class="muted">No data for {escape(title.lower())} in this period.</p>')
    label_w, bar_w, caption_w, row_h = 170, 300, 140, 26
    width, height = label_w + bar_w + caption_w, len(bars) * row_h + 8
    top = maximum if maximum is not None else max(bar.value for bar in bars)
    # Drawn at its natural size (text stays legible); CSS only shrinks it to fit a narrow card.
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">'
    ]
    for index, bar in enumerate(bars):
        y = 4 + index * row_h
        length = 0.0 if top <= 0 else max(2.0, bar_w * bar.value / top) if bar.value > 0 else 0.0
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" font-size="12" text-anchor="end" fill="#1d2433">'
            f"{escape(_clip(bar.label, 28))}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="16" rx="3" fill="#eef1f6"/>'
            f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="16" rx="3" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 8}" y="{y + 16}" font-size="12" fill="#384254">{escape(bar.caption)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above went through escape()


# One colour per series of a trend chart, in the order the series come (most rollbacks first).
SERIES_COLOURS = ("#2457c5", "#6a4bc4", "#1a7f4b", "#a15c00", "#b42318", "#0e7490", "#5b6474")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]  # one per column


def weekly_columns_svg(weeks: Sequence[str], series: Sequence[Series], *, title: str) -> SafeString:
    """Stacked columns, one per week, one colour per series, with a legend. The page adds the same figures as a
    table for whoever cannot see the drawing."""
    if not weeks or not series:
        return mark_safe(f'<p class="muted">No data for {escape(title.lower())} in this period.</p>')
    axis_w, plot_w, plot_h, top, legend_h = 40, 1040, 180, 10, 22
    columns = len(weeks)
    slot = plot_w / columns
    bar = max(1.0, slot * 0.7)
    totals = [sum(item.values[index] for item in series) for index in range(columns)]
    peak = max(max(totals), 1)
    legend_rows = math.ceil(len(series) / 4)
    width, height = axis_w + plot_w + 10, top + plot_h + 24 + legend_rows * legend_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">'
    ]
    for tick in sorted({0, math.ceil(peak / 2), peak}):
        y = top + plot_h - plot_h * tick / peak
        parts.append(
            f'<line x1="{axis_w}" y1="{y:.1f}" x2="{axis_w + plot_w}" y2="{y:.1f}" stroke="#e7ebf2"/>'
            f'<text x="{axis_w - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6474">{tick}</text>'
        )
    label_every = max(1, math.ceil(columns / 8))
    for index, week in enumerate(weeks):
        x = axis_w + index * slot + (slot - bar) / 2
        base = float(top + plot_h)
        for number, item in enumerate(series):
            value = item.values[index]
            if value <= 0:
                continue
            height_px = plot_h * value / peak
            base -= height_px
            colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{height_px:.1f}" fill="{colour}">'
                f"<title>{escape(item.label)}, week of {escape(week)}: {value}</title></rect>"
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
                f'fill="#5b6474">{escape(week[5:])}</text>'
            )
    for number, item in enumerate(series):
        x = axis_w + (number % 4) * 165
        y = top + plot_h + 24 + (number // 4) * legend_h
        colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
        parts.append(
            f'<rect x="{x}" y="{y + 4}" width="12" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{x + 18}" y="{y + 14}" font-size="12" fill="#1d2433">{escape(_clip(item.label, 22))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above went through escape()


def sparkline_svg(values: Sequence[float], *, label: str, maximum: float = 1.0) -> SafeString:
    """A small line of one value per week (a share from 0 to `maximum`), for a table cell."""
    if not values:
        return mark_safe("")
    width, height, pad = 120, 28, 3
    step = (width - 2 * pad) / max(1, len(values) - 1)
    top = maximum if maximum > 0 else 1.0
    points = " ".join(
        f"{pad + index * step:.1f},{height - pad - (height - 2 * pad) * min(value, top) / top:.1f}"
        for index, value in enumerate(values)
    )
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}"><line x1="{pad}" y1="{height - pad}" x2="{width - pad}" '
        f'y2="{height - pad}" stroke="#e7ebf2"/><polyline points="{points}" fill="none" stroke="#b42318" '
        'stroke-width="1.5"/></svg>'
    )  # the only text, the label, went through escape()
