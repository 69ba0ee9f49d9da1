"""Backfills: load a past window into a dataset, in chunks, without touching its saved settings.

A backfill splits the days ``first .. last`` (both included, in the dataset's time zone) into
chunks of at most ``chunk_days`` days and runs the dataset once per chunk with
``trigger="backfill"`` and the chunk as its window; the dataset's own date selection, schedule
and everything else it is made of stay as they were.

Resuming: a chunk is *finished* when the dataset's history holds a successful ``backfill`` run
of exactly that window (same start, same end). Chunks already finished are skipped, so after a
failure, running the same command again (same dates, same ``chunk_days``) starts from the first
unfinished chunk. Other chunk sizes give other windows, which count as not finished.

Update methods: ``merge`` and ``partition`` make a chunk idempotent, so repeating one is
harmless. ``append`` adds a chunk's rows again whenever the chunk is loaded again (a new
backfill of the same days, or other chunk sizes). ``replace`` would keep only the last chunk,
so a replace dataset can be backfilled only in one chunk.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx2

from leadferry.clock import Clock, utc_now
from leadferry.connectors import get_connector
from leadferry.connectors.base import FetchProgress
from leadferry.dates import DateWindow, today_in, zone
from leadferry.errors import ConfigError, InvalidWindowError, LeadferryError
from leadferry.run import run_dataset
from leadferry.run.plan import effective_timezone
from leadferry.settings import Settings
from leadferry.store import Run, Store

logger = logging.getLogger(__name__)

TRIGGER = "backfill"


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    """What a backfill was asked to load: the days ``first .. last`` (included), in chunks of
    at most ``chunk_days`` days (a job of the run service carries it to a worker)."""

    first: dt.date
    last: dt.date
    chunk_days: int


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """What happened to one chunk: ``done`` (run now), ``skipped`` (finished before) or ``failed``.

    ``run`` is the run that loaded the chunk: now (done) or earlier (skipped); None on failure.
    """

    number: int
    total: int
    window: DateWindow
    status: str
    run: Run | None = None
    error: str | None = None

    @property
    def days(self) -> str:
        return describe(self.window)


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """Every chunk of a backfill that ran to the end, in order."""

    dataset: str
    chunks: tuple[ChunkOutcome, ...]

    @property
    def done(self) -> int:
        return sum(chunk.status == "done" for chunk in self.chunks)

    @property
    def skipped(self) -> int:
        return sum(chunk.status == "skipped" for chunk in self.chunks)

    @property
    def rows(self) -> dict[str, int]:
        """Rows per table loaded by this backfill (chunks skipped are not counted)."""
        totals: dict[str, int] = {}
        for chunk in self.chunks:
            if chunk.status == "done" and chunk.run is not None:
                for table, count in chunk.run.rows.items():
                    totals[table] = totals.get(table, 0) + count
        return totals


def describe(window: DateWindow) -> str:
    """``2026-11-13 .. 2026-11-15``: the days of a window, the last one included."""
    last = window.end_day - dt.timedelta(days=1)
    return str(last) if last == window.first_day else f"{window.first_day} .. {last}"


def plan_backfill(
    store: Store,
    name: str,
    first: dt.date,
    last: dt.date,
    chunk_days: int,
    *,
    now: dt.datetime,
) -> list[DateWindow]:
    """The chunks that cover the days ``first .. last`` (included) in the dataset's zone.

    Raises:
        ConfigError: ``chunk_days`` is below 1, the dataset's report has no dates, or the dataset
            uses replace and the window takes more than one chunk.
        InvalidWindowError: ``last`` is before ``first``, or either is after today.
        NotFoundError: there is no such dataset (or its account or connector is gone).
    """
    if chunk_days < 1:
        raise ConfigError(f"--chunk-days: {chunk_days} is too small; use 1 or more")
    if last < first:
        raise InvalidWindowError(f"--to ({last}) is before --from ({first})")
    dataset = store.get_dataset(name)
    connector = get_connector(dataset.connector)
    if not connector.report(dataset.report).dated:
        raise ConfigError(
            f"dataset {name}: report {dataset.report} takes no dates, so there is nothing to "
            f"backfill; use leadferry run {name}"
        )
    timezone = effective_timezone(dataset.timezone, store.get_account(dataset.account), connector)
    today = today_in(timezone, now)
    for flag, day in (("--from", first), ("--to", last)):
        if day > today:
            raise InvalidWindowError(
                f"{flag}: {day} is in the future (today is {today} in {timezone})"
            )
    whole = DateWindow.of_days(first, last + dt.timedelta(days=1), zone(timezone))
    chunks = list(whole.split(chunk_days))
    if dataset.update_method == "replace" and len(chunks) > 1:
        days = len(whole.days())
        raise ConfigError(
            f"dataset {name} uses the replace update method, so backfilling it in {len(chunks)} "
            f"chunks would keep only the last chunk: switch it to merge or partition "
            f"(leadferry datasets edit {name} --update partition), or load the window as "
            f"one chunk (--chunk-days {days})"
        )
    return chunks


def finished_runs(store: Store, name: str) -> dict[tuple[dt.datetime, dt.datetime], Run]:
    """Successful backfill runs of dataset *name* by their exact window (the newest wins)."""
    finished: dict[tuple[dt.datetime, dt.datetime], Run] = {}
    for run in store.list_runs(name):
        if run.trigger != TRIGGER or run.status != "success":
            continue
        if run.window_start is None or run.window_end is None:
            continue
        finished.setdefault((run.window_start, run.window_end), run)
    return finished


def run_backfill(
    store: Store,
    settings: Settings,
    name: str,
    first: dt.date,
    last: dt.date,
    chunk_days: int,
    *,
    clock: Clock = utc_now,
    client: httpx2.Client | None = None,
    progress: Callable[[FetchProgress], None] | None = None,
    on_chunk: Callable[[ChunkOutcome], None] | None = None,
) -> BackfillResult:
    """Load the days ``first .. last`` of dataset *name* chunk by chunk, skipping finished chunks.

    Each unfinished chunk is one run with trigger ``backfill`` and the chunk as its window; the
    dataset's saved settings are not changed. ``on_chunk`` hears of every chunk as it ends
    (failed ones included); ``clock``, ``client`` and ``progress`` are passed to each run.

    Raises:
        ConfigError, InvalidWindowError, NotFoundError: see :func:`plan_backfill`.
        LeadferryError: a chunk failed. Its run is in the history; the error keeps its class (so
            its recovery intent) and its message names the chunk and says how to resume. Later
            chunks are not run.
    """
    chunks = plan_backfill(store, name, first, last, chunk_days, now=clock())
    finished = finished_runs(store, name)
    outcomes: list[ChunkOutcome] = []
    for number, window in enumerate(chunks, 1):
        earlier = finished.get((window.start, window.end))
        if earlier is not None:
            outcome = ChunkOutcome(number, len(chunks), window, "skipped", earlier)
            logger.info("%s: backfill chunk %s already done by run %d", name, window, earlier.id)
        else:
            try:
                run = run_dataset(
                    store,
                    settings,
                    name,
                    clock=clock,
                    trigger=TRIGGER,
                    window=window,
                    client=client,
                    progress=progress,
                )
            except LeadferryError as exc:
                failed = ChunkOutcome(number, len(chunks), window, "failed", error=str(exc))
                if on_chunk is not None:
                    on_chunk(failed)
                # Same class, so the same recovery intent and exit status; only the message
                # grows to say where the backfill stopped and how to go on.
                exc.args = (
                    f"backfill of {name} stopped at chunk {number}/{len(chunks)} "
                    f"({failed.days}): {exc}; run the same command again to resume from "
                    "this chunk",
                )
                raise
            outcome = ChunkOutcome(number, len(chunks), window, "done", run)
            logger.info("%s: backfill chunk %s loaded by run %d", name, window, run.id)
        outcomes.append(outcome)
        if on_chunk is not None:
            on_chunk(outcome)
    return BackfillResult(name, tuple(outcomes))
