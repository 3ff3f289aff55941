"""Small server-rendered SVG charts: readable without colour (failures carry a mark and a pattern, every
bar its own tooltip, every chart a text summary for screen readers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 600, 120, 18
STATUSES = ("success", "failed", "skipped", "running")
MARKS = {"success": "", "failed": "✕", "skipped": "\N{EN DASH}", "running": "…"}

_PATTERN = (
    '<defs><pattern id="{id}" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" class="bar-failed"/>'
    '<line x1="0" y1="0" x2="0" y2="6" class="hatch"/></pattern></defs>'
)


def _opening(summary: str, chart_id: str) -> list[str]:
    """An SVG chart's start: its text summary (for screen readers and as a tooltip) and the hatch of
    failed bars."""
    return [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT + PAD}" class="chart" role="img" '
        f'aria-label="{escape(summary)}" id="{chart_id}">',
        f"<title>{escape(summary)}</title>",
        _PATTERN.format(id=f"{chart_id}-hatch"),
    ]


@dataclass(frozen=True)
class Bar:
    """One run as a bar: its value, label and status."""

    value: float
    label: str
    status: str


def run_bars(bars: Sequence[Bar], *, title: str, unit: Callable[[float], str], chart_id: str) -> Markup:
    """Bars of one metric over a job's recent runs, oldest left; failed runs hatched and marked ✕."""
    if not bars:
        return Markup(f'<p class="muted">No runs yet: nothing to chart for {escape(title)}.</p>')
    top = max((bar.value for bar in bars), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(bars), 1)
    width = min(max(step * 0.7, 2), 24)
    failed = sum(bar.status == "failed" for bar in bars)
    latest = bars[-1]
    summary = (
        f"{title}: {len(bars)} runs, highest {unit(top)}, latest {unit(latest.value)} "
        f"({latest.status}); {failed} failed."
    )
    parts = _opening(summary, chart_id)
    base = HEIGHT - 4
    for index, bar in enumerate(bars):
        x = PAD + index * step
        height = 0 if bar.status == "failed" and not bar.value else (base - PAD) * bar.value / top
        height = max(height, 2)
        fill = f' fill="url(#{chart_id}-hatch)"' if bar.status == "failed" else ""
        tip = escape(f"{bar.label}: {unit(bar.value)} ({bar.status})")
        parts.append(
            f'<g><title>{tip}</title><rect x="{x:.1f}" y="{base - height:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" class="bar-{bar.status}"{fill}/>'
        )
        if MARKS.get(bar.status):
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{HEIGHT + 10}" class="mark" '
                f'text-anchor="middle">{MARKS[bar.status]}</text>'
            )
        parts.append("</g>")
    parts.append(f'<text x="{PAD}" y="12" class="axis">{escape(unit(top))}</text>')
    parts.append(f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - PAD}" y2="{base}" class="axis-line"/></svg>')
    return Markup("".join(parts))


def runs_per_day(counts: dict[dt.date, dict[str, int]], days: Sequence[dt.date], *, chart_id: str) -> Markup:
    """Stacked bars of runs per day by status; failures hatched, with their count written above."""
    totals = [sum(counts.get(day, {}).values()) for day in days]
    top = max(totals, default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(days), 1)
    width = min(step * 0.7, 32)
    failed = sum(counts.get(day, {}).get("failed", 0) for day in days)
    summary = (
        f"Runs per day over {len(days)} days: {sum(totals)} runs, {failed} failed; "
        f"busiest day {max(totals, default=0)} runs."
    )
    parts = _opening(summary, chart_id)
    base = HEIGHT - 4
    for index, day in enumerate(days):
        x = PAD + index * step
        y = float(base)
        by_status = counts.get(day, {})
        tip = ", ".join(f"{by_status[s]} {s}" for s in STATUSES if by_status.get(s)) or "no runs"
        parts.append(f"<g><title>{escape(f'{day.isoformat()}: {tip}')}</title>")
        for status in STATUSES:
            count = by_status.get(status, 0)
            if not count:
                continue
            height = (base - PAD) * count / top
            y -= height
            fill = f' fill="url(#{chart_id}-hatch)"' if status == "failed" else ""
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
                f'class="bar-{status}"{fill}/>'
            )
        if by_status.get("failed"):
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{max(y - 3, 10):.1f}" class="mark" '
                f'text-anchor="middle">✕{by_status["failed"]}</text>'
            )
        parts.append(
            f'<text x="{x + width / 2:.1f}" y="{HEIGHT + 12}" class="axis" '
            f'text-anchor="middle">{day.day}</text></g>'
        )
    parts.append(f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - PAD}" y2="{base}" class="axis-line"/></svg>')
    return Markup("".join(parts))
