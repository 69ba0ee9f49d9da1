"""Runs and their history, as the CLI, the API and the pages show them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from leadferry.store import Run


def when(value: dt.datetime | None, tz: ZoneInfo | None = None) -> str:
    """ISO 8601 with offset, in *tz* when given (a dataset's zone), else as stored (UTC)."""
    if value is None:
        return ""
    return (value.astimezone(tz) if tz else value).isoformat(timespec="seconds")


def days_of(start: dt.datetime | None, end: dt.datetime | None, tz: ZoneInfo) -> str:
    """``2026-11-16 .. 2026-11-22 (7 days)``: a run's window as the days it covers."""
    if start is None or end is None:
        return ""
    first = start.astimezone(tz).date()
    last = (end.astimezone(tz) - dt.timedelta(seconds=1)).date()
    count = (last - first).days + 1
    span = str(first) if count == 1 else f"{first} .. {last}"
    return f"{span} ({count} day{'s' if count > 1 else ''})"


def run_json(run: Run, tz: ZoneInfo) -> dict[str, Any]:
    """One run of the history: windows and slots in the dataset's zone, times in UTC."""
    return {
        "id": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "window_start": when(run.window_start, tz) or None,
        "window_end": when(run.window_end, tz) or None,
        "rows": run.rows,
        "error": run.error,
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at) or None,
        "seconds": run.duration,
        "load_id": run.load_id,
        "slot": when(run.slot, tz) or None,
        "attempt": run.attempt,
        "worker": run.worker,
        "schema_changes": run.schema_changes,
        "progress": run.progress.as_json() if run.progress and run.status == "running" else None,
    }


def history_summary(runs: Sequence[Run]) -> dict[str, Any]:
    """Success rate (of finished runs) and average duration (of successful ones)."""
    finished = [r for r in runs if r.finished_at is not None and r.status != "running"]
    succeeded = [r for r in finished if r.status == "success"]
    durations = [r.duration for r in succeeded if r.duration is not None]
    return {
        "runs": len(runs),
        "success_rate": len(succeeded) / len(finished) if finished else None,
        "average_seconds": sum(durations) / len(durations) if durations else None,
    }
