"""The History chart's geometry: rows as bars and duration as a line, one mark per run.

The page draws it as inline SVG (``_run_chart.html``) from the numbers computed here, so there
is no chart library and nothing to run in the browser.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from leadferry.store import Run

WIDTH, HEIGHT = 800, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 30, 40
MAX_RUNS = 60
"""The newest runs drawn; older ones stay in the table below the chart."""
GRID_STEPS = 4
FAILED_STUB = 4.0
"""Height of the bar of a failed run that loaded nothing."""


@dataclass(frozen=True, slots=True)
class Mark:
    """One run: its bar (rows), its point (seconds; None while running) and its tooltip."""

    run_id: int
    status: str
    slot_x: float
    slot_width: float
    bar_x: float
    bar_width: float
    bar_y: float
    bar_height: float
    center: float
    point_y: float | None
    tooltip: str
    tick: str | None


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class RunChart:
    """Everything ``_run_chart.html`` draws, in SVG user units of a WIDTH x HEIGHT box."""

    marks: list[Mark]
    row_ticks: list[Tick]
    second_ticks: list[Tick]
    line: str
    omitted: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def run_chart(runs: Sequence[Run], tz: ZoneInfo) -> RunChart | None:
    """The chart of *runs* (newest first, as the store lists them); None when there are none."""
    if not runs:
        return None
    shown = list(reversed(runs[:MAX_RUNS]))
    # Runs are numbered in the dataset's history (#1 its first), as the History table shows.
    numbers = {run.id: len(runs) - index for index, run in enumerate(runs)}
    top_rows = nice_ceiling(max(run.total_rows for run in shown))
    top_seconds = nice_ceiling(max(run.duration or 0.0 for run in shown))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / len(shown)
    bar = max(2.0, min(slot * 0.6, 48.0))
    every = math.ceil(len(shown) / 12)

    def y_of(value: float, top: float) -> float:
        return TOP + plot_height * (1 - value / top)

    marks = []
    for index, run in enumerate(shown):
        left = LEFT + slot * index
        center = left + slot / 2
        height = plot_height * run.total_rows / top_rows
        if run.status in ("failed", "interrupted"):
            height = max(height, FAILED_STUB)  # a failed run with no rows stays visible
        duration = run.duration
        marks.append(
            Mark(
                run_id=run.id,
                status=run.status,
                slot_x=round(left, 1),
                slot_width=round(slot, 1),
                bar_x=round(center - bar / 2, 1),
                bar_width=round(bar, 1),
                bar_y=round(TOP + plot_height - height, 1),
                bar_height=round(height, 1),
                center=round(center, 1),
                point_y=None if duration is None else round(y_of(duration, top_seconds), 1),
                tooltip=_tooltip(run, numbers[run.id], tz),
                tick=f"#{numbers[run.id]}" if (len(shown) - 1 - index) % every == 0 else None,
            )
        )
    steps = [i / GRID_STEPS for i in range(GRID_STEPS + 1)]
    return RunChart(
        marks=marks,
        row_ticks=[Tick(round(y_of(s, 1), 1), compact(top_rows * s)) for s in steps],
        second_ticks=[Tick(round(y_of(s, 1), 1), f"{compact(top_seconds * s)} s") for s in steps],
        line=" ".join(f"{m.center},{m.point_y}" for m in marks if m.point_y is not None),
        omitted=max(0, len(runs) - MAX_RUNS),
    )


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least *value* (1 for 0)."""
    if value <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if value <= m * base * (1 + 1e-9))


def compact(value: float) -> str:
    """``0``, ``2.5``, ``750``, ``1.5k``, ``12M``: an axis label that fits."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _tooltip(run: Run, number: int, tz: ZoneInfo) -> str:
    started = run.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    took = "still running" if run.duration is None else f"{run.duration:.1f} s"
    return (
        f"Run #{number} · {run.trigger} · {run.status} · started {started} · "
        f"{run.total_rows:,} rows · {took}"
    )


@dataclass(frozen=True, slots=True)
class DayBar:
    x: float
    y: float
    width: float
    height: float
    tooltip: str
    tick: str | None


@dataclass(frozen=True, slots=True)
class DayChart:
    """Rows per report day of a dataset's main table, oldest day left (``_data_chart.html``)."""

    bars: list[DayBar]
    ticks: list[Tick]
    days: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def day_chart(counts: Sequence[tuple[dt.date, int]]) -> DayChart | None:
    """The chart of *counts* (day, rows) in day order; None when there are none."""
    if not counts:
        return None
    top = nice_ceiling(max(rows for _day, rows in counts))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / len(counts)
    bar = max(1.0, min(slot * 0.8, 40.0))
    every = math.ceil(len(counts) / 8)
    bars = []
    for index, (day, rows) in enumerate(counts):
        height = plot_height * rows / top
        bars.append(
            DayBar(
                x=round(LEFT + slot * index + (slot - bar) / 2, 1),
                y=round(TOP + plot_height - height, 1),
                width=round(bar, 1),
                height=round(height, 1),
                tooltip=f"{day.isoformat()}: {rows:,} rows",
                tick=day.strftime("%m-%d") if (len(counts) - 1 - index) % every == 0 else None,
            )
        )
    steps = [i / GRID_STEPS for i in range(GRID_STEPS + 1)]
    ticks = [Tick(round(TOP + plot_height * (1 - s), 1), compact(top * s)) for s in steps]
    return DayChart(bars, ticks, len(counts))
