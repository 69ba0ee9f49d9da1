"""One run of one dataset: resolve the window, fetch, load through dlt, record the run.

Fetching streams Arrow batches from the connector straight into dlt's extract step; the warehouse
lock is taken only for dlt's load step. Every run, failed or not, ends up in the history.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import queue
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx2
import pyarrow as pa
import pyarrow.compute as pc

from leadferry.apply import DAY_COLUMN, MAX_IDENTIFIER, LoadSpec, apply_load, table_rows
from leadferry.clock import utc_now
from leadferry.connectors import get_connector
from leadferry.connectors.base import (
    Connector,
    Credentials,
    FetchProgress,
    Report,
    RetryPolicy,
    Table,
    TableBatch,
    refuse_cross_host_redirect,
)
from leadferry.dates import DateSelection, DateWindow, parse_day, start_of_day, today_in, zone
from leadferry.errors import ConfigError, LeadferryError, LoadError
from leadferry.settings import Settings
from leadferry.store import Account, Dataset, Run, Store
from leadferry.store.records import check_update_method
from leadferry.warehouse import warehouse_errors, warehouse_writer

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything a run needs, resolved and validated before anything is fetched."""

    dataset: Dataset
    account: Account
    connector: type[Connector]
    report: Report
    params: dict[str, Any]
    timezone: str
    window: DateWindow | None
    updated_since: dt.datetime | None = None
    """Incremental runs of reports that filter changes themselves: changes since then."""

    @property
    def recorded_window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """What the history shows: the window, or the span of changes asked for."""
        if self.window is not None:
            return self.window.start, self.window.end
        return self.updated_since, None

    @property
    def merge_key(self) -> tuple[str, ...]:
        if self.dataset.merge_key:
            return tuple(part.strip() for part in self.dataset.merge_key.split(","))
        return self.report.merge_key


@dataclass(slots=True)
class LoadOutcome:
    rows: dict[str, int] = field(default_factory=dict)
    load_id: str | None = None
    schema_changes: list[str] = field(default_factory=list)
    cursor: dt.datetime | None = None
    """The newest change loaded, for incremental datasets."""
    table_rows: int | None = None
    """Rows in the main table once the load committed."""


def dataset_timezone(dataset: Dataset, account: Account, connector: type[Connector]) -> str:
    """The dataset's zone, else its account's, else the connector's default."""
    return dataset.timezone or account.config.get("timezone") or connector.default_timezone()


def check_dataset_settings(
    connector: type[Connector],
    report_slug: str,
    params: dict[str, Any],
    date_selection: dict[str, Any] | None,
    timezone: str | None,
    update_method: str,
    merge_key: str | None,
    incremental: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate what a dataset is made of; return the typed parameters.

    Raises:
        ConfigError: naming the report, parameter, date flag, zone or method that is wrong.
    """
    report = connector.report(report_slug)
    typed = report.parse_params(params)
    selection = DateSelection.parse(date_selection)
    if not report.dated and selection.kind != "default":
        raise ConfigError(f"report {report.slug} takes no date selection")
    if timezone:
        zone(timezone)
    check_update_method(update_method)
    _check_names(report, merge_key)
    if update_method == "partition" and not report.day_column:
        raise ConfigError(f"report {report.slug} has no date column to partition by")
    if merge_key is not None and update_method != "merge":
        raise ConfigError("--merge-key only applies to the merge update method")
    main = report.tables[0]
    columns = main.columns
    if merge_key is not None and columns and not main.more_columns:
        unknown = [key for key in merge_key.split(",") if key.strip() not in columns]
        if unknown:
            raise ConfigError(
                f"--merge-key {', '.join(unknown)}: not a column of report {report.slug} "
                f"(its columns: {', '.join(columns)})"
            )
    if incremental is not None:
        if not report.cursor_column:
            raise ConfigError(f"report {report.slug} cannot be loaded incrementally")
        if update_method != "merge":
            raise ConfigError(
                "an incremental dataset needs the merge update method (--update merge)"
            )
        if int(incremental.get("lookback_minutes", 0)) < 0:
            raise ConfigError("--lookback must be 0 minutes or more")
        if incremental.get("start"):
            parse_day(str(incremental["start"]), "--incremental-start")
    return typed


def _check_names(report: Report, merge_key: str | None) -> None:
    """Refuse a table or column name PostgreSQL would cut short (it keeps 63 characters)."""
    names = [("table", table.name) for table in report.tables]
    names += [("column", column) for table in report.tables for column in table.columns]
    names += [("merge key column", key.strip()) for key in (merge_key or "").split(",")]
    for kind, name in names:
        if len(name) > MAX_IDENTIFIER:
            raise ConfigError(
                f"{kind} {name[:24]}... of report {report.slug} is longer than the "
                f"{MAX_IDENTIFIER} characters a warehouse name may have: choose a shorter one"
            )


def plan_run(
    store: Store, dataset: Dataset, now: dt.datetime, window: DateWindow | None = None
) -> RunPlan:
    """Resolve a dataset's account, connector, report, parameters and window for *now*."""
    account = store.get_account(dataset.account)
    connector = get_connector(dataset.connector)
    report = connector.report(dataset.report)
    params = check_dataset_settings(
        connector,
        dataset.report,
        dataset.params,
        dataset.date_selection,
        dataset.timezone,
        dataset.update_method,
        dataset.merge_key,
        dataset.incremental,
    )
    timezone = dataset_timezone(dataset, account, connector)
    if window is None and dataset.incremental is not None:
        since = _changes_since(dataset, timezone, now)
        if report.window_is_cursor:
            window = DateWindow(since, now.astimezone(zone(timezone)))
        else:
            return RunPlan(dataset, account, connector, report, params, timezone, None, since)
    if window is None and report.dated:
        selection = DateSelection.parse(dataset.date_selection)
        window = selection.resolve(timezone, today_in(timezone, now))
    return RunPlan(dataset, account, connector, report, params, timezone, window)


def _changes_since(dataset: Dataset, timezone: str, now: dt.datetime) -> dt.datetime:
    """Where an incremental run starts: the cursor less the lookback, else the configured start
    (else the start of the date selection's window)."""
    settings = dataset.incremental or {}
    tz = zone(timezone)
    cursor = dataset.state.cursor
    if cursor is not None:
        lookback = dt.timedelta(minutes=int(settings.get("lookback_minutes", 0)))
        return (cursor - lookback).astimezone(tz)
    if settings.get("start"):
        return start_of_day(parse_day(str(settings["start"]), "--incremental-start"), tz)
    selection = DateSelection.parse(dataset.date_selection)
    return selection.resolve(timezone, today_in(timezone, now)).start


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS settings every run's client shares: reading the system's CA certificates takes
    about 50 ms of CPU, a tenth of a small run, and they do not change while a process runs."""
    return httpx2.create_ssl_context()


def make_client(settings: Settings) -> httpx2.Client:
    """The HTTP client runs use: bounded timeouts, enough connections for the page threads,
    redirects followed only on the same host."""
    return httpx2.Client(
        verify=_tls_context(),
        timeout=httpx2.Timeout(settings.http_timeout, connect=min(10.0, settings.http_timeout)),
        limits=httpx2.Limits(max_connections=settings.concurrency + 2),
        follow_redirects=True,
        event_hooks={"response": [refuse_cross_host_redirect]},
        headers={"User-Agent": "leadferry"},
    )


def open_connector(
    plan_or_account: RunPlan | Account,
    client: httpx2.Client,
    settings: Settings,
) -> Connector:
    account = plan_or_account.account if isinstance(plan_or_account, RunPlan) else plan_or_account
    connector = get_connector(account.connector)
    retry = RetryPolicy(
        attempts=settings.http_retries + 1,
        base_delay=settings.http_backoff,
        max_total_wait=settings.http_max_wait,
    )
    return connector(
        client,
        Credentials(account.name, account.credentials()),
        concurrency=settings.concurrency,
        retry=retry,
    )


@contextlib.contextmanager
def connected(
    account: Account, settings: Settings, client: httpx2.Client | None = None
) -> Iterator[Connector]:
    """*account*'s connector for the block, calling through *client* when given, else through
    a client of its own, closed after the block."""
    with contextlib.nullcontext(client) if client else make_client(settings) as http:
        yield open_connector(account, http, settings)


def run_dataset(
    store: Store,
    settings: Settings,
    name: str,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    trigger: str = "manual",
    window: DateWindow | None = None,
    client: httpx2.Client | None = None,
    progress: Callable[[FetchProgress], None] | None = None,
    as_of: dt.datetime | None = None,
    slot: dt.datetime | None = None,
    attempt: int = 0,
    worker: str | None = None,
    job_key: str | None = None,
) -> Run:
    """Run dataset *name* once and record it in the history.

    ``clock`` tells the time (the window is resolved for its "today"); ``window`` overrides the
    dataset's date selection (backfills); ``client`` replaces the HTTP client (tests pass a
    simulator's). ``as_of`` resolves the date selection for another instant than now (a
    scheduled slot, so a late or retried run takes the slot's window); ``slot`` and ``attempt``
    are recorded with the run. ``worker`` (a heartbeating worker's name) and ``job_key`` (the
    queued job served) go to :meth:`Store.start_run`. The run is recorded even when it fails.

    Raises:
        NotFoundError: there is no such dataset.
        BusyError: the dataset is already running (AccountBusyError: its account runs its most
            datasets at once; DuplicateJobError: ``job_key`` already ran).
        LeadferryError: the run failed; the history has the same message.
    """
    dataset = store.get_dataset(name)
    now = clock()
    claim = {"slot": slot, "attempt": attempt, "worker": worker, "job_key": job_key}
    try:
        plan = plan_run(store, dataset, as_of or now, window)
    except LeadferryError as exc:
        run = store.start_run(name, trigger, None, None, now, **claim)
        store.finish_run(run.id, "failed", now, error=str(exc))
        raise
    run = store.start_run(name, trigger, *plan.recorded_window, now, **claim)
    logger.info("%s: run %d started, window %s", name, run.id, plan.window)
    own_client = client is None
    http = client or make_client(settings)
    try:
        connector = open_connector(plan, http, settings)
        batches = connector.fetch(
            plan.report, plan.params, plan.window, progress, updated_since=plan.updated_since
        )
        outcome = load(
            plan, settings, batches, holder=f"dataset {name} (run {run.id})", run_id=run.id
        )
        if outcome.cursor is not None and (
            dataset.state.cursor is None or outcome.cursor > dataset.state.cursor
        ):
            store.set_state(name, cursor=outcome.cursor)
    except LeadferryError as exc:
        store.finish_run(run.id, "failed", clock(), error=str(exc))
        raise
    except KeyboardInterrupt:
        store.finish_run(run.id, "interrupted", clock(), error="interrupted")
        raise
    except Exception as exc:
        store.finish_run(run.id, "failed", clock(), error=f"internal error: {type(exc).__name__}")
        raise
    finally:
        if own_client:
            http.close()
    return store.finish_run(
        run.id,
        "success",
        clock(),
        rows=outcome.rows,
        error=connector.note,  # a successful run's note: what was loaded other than asked
        load_id=outcome.load_id,
        schema_changes=outcome.schema_changes,
        table_rows=outcome.table_rows,
    )


class ReadAhead(Generic[T]):
    """Iterates *items* on a thread of its own, at most *most* items ahead of the reader.

    The reader gets the items in order, and the thread's exception where it stopped. Leaving
    the block stops the thread (and closes *items*) whether or not everything was read.
    """

    _DONE = object()

    def __init__(self, items: Iterator[T], most: int) -> None:
        self._items = items
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=most)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="read-ahead", daemon=True)

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    break
            self._put(self._DONE)
        except BaseException as exc:
            self._put(exc)
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def _put(self, item: Any) -> bool:
        """Queue *item* unless the reader has gone; False when it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _consume(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


# -- loading ------------------------------------------------------------------------------------


LOAD_CHUNK_ROWS = 20_000
"""Pages go to dlt in tables of about this many rows: dlt's work per item is mostly per table,
so 1,000-row pages cost it twice the CPU (3.4 against 1.7 s for 1M leads)."""


class _Extraction:
    """Feeds connector batches to dlt in chunks, adding the day column, checking the merge key
    on first sight."""

    def __init__(self, plan: RunPlan, batches: Iterator[TableBatch]) -> None:
        self.plan = plan
        self.batches = batches
        self.days: set[dt.date] = set()
        self.seen: set[str] = set()
        self.cursor: dt.datetime | None = None

    def items(self) -> Iterator[Any]:
        tables = {table.name: table for table in self.plan.report.tables}
        pending: dict[str, list[pa.RecordBatch]] = {}
        for item in self.batches:
            batch = item.batch
            table = tables[item.table]
            if table is self.plan.report.main_table:
                batch = self._with_day(batch)
                self._advance_cursor(batch)
            queued = pending.setdefault(item.table, [])
            if queued and not queued[0].schema.equals(batch.schema):
                yield self._chunk(table, queued)  # a new column: its own chunk from here on
                queued = pending[item.table] = []
            queued.append(batch)
            if sum(len(queued_batch) for queued_batch in queued) >= LOAD_CHUNK_ROWS:
                yield self._chunk(table, queued)
                pending[item.table] = []
        for name, queued in pending.items():
            if queued:
                yield self._chunk(tables[name], queued)

    def _chunk(self, table: Table, batches: list[pa.RecordBatch]) -> Any:
        import dlt

        chunk = pa.Table.from_batches(batches)
        if table.name not in self.seen:
            self.seen.add(table.name)
            self._check_merge_key(table, chunk)
        return dlt.mark.with_table_name(chunk, table.name)

    def _with_day(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        column = self.plan.report.day_column
        if not column or column not in batch.schema.names:
            return batch
        values = batch.column(column)
        if pa.types.is_date(values.type):
            days = values.cast(pa.date32())
        else:
            local = values.cast(pa.timestamp("us", tz=self.plan.timezone))
            days = pc.cast(pc.local_timestamp(local), pa.date32())
        self.days.update(d for d in pc.unique(days).to_pylist() if d is not None)
        if DAY_COLUMN in batch.schema.names:
            return batch
        return batch.append_column(DAY_COLUMN, days)

    def _advance_cursor(self, batch: pa.RecordBatch) -> None:
        column = self.plan.report.cursor_column
        if self.plan.dataset.incremental is None or not column:
            return
        if column not in batch.schema.names:
            return
        newest = pc.max(batch.column(column)).as_py()
        if newest is not None and (self.cursor is None or newest > self.cursor):
            self.cursor = newest

    def _check_merge_key(self, table: Table, batch: pa.Table) -> None:
        if self.plan.dataset.update_method != "merge" or table.parent_key:
            return
        missing = [key for key in self.plan.merge_key if key not in batch.schema.names]
        if missing:
            raise ConfigError(
                f"merge key {', '.join(missing)} is not a column of {table.name} "
                f"(columns: {', '.join(batch.schema.names)})"
            )


def load(
    plan: RunPlan,
    settings: Settings,
    batches: Iterator[TableBatch],
    holder: str,
    run_id: int,
) -> LoadOutcome:
    """Load *batches* into the dataset's schema with its update method, as run *run_id*.

    dlt extracts and normalises without the warehouse lock; then every table of the dataset and
    the record of the load change in one transaction under the lock (:mod:`leadferry.apply`).
    """
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    from leadferry.destination import clear_pipeline, configure_dlt, warehouse_destination

    configure_dlt(settings)
    name = plan.dataset.name
    clear_pipeline(settings, name)  # what a failed or killed run left is never applied
    try:
        # Pages start coming while dlt sets the pipeline up; dlt is imported first, as the page
        # threads use its naming convention.
        with ReadAhead(batches, most=4 * settings.concurrency) as ahead:
            pipeline = dlt.pipeline(
                pipeline_name=name,
                destination=warehouse_destination(settings.warehouse_path),
                dataset_name=name,
                pipelines_dir=str(settings.pipelines_dir),
            )
            extraction = _Extraction(plan, ahead)
            resource = dlt.resource(extraction.items(), name=plan.report.slug)
            try:
                pipeline.extract(resource)
                normalized = pipeline.normalize()
            except PipelineStepFailed as exc:
                raise _cause(exc) from None
        counts = dict(normalized.row_counts)
        load_id, files = _normalized_files(pipeline)
        outcome = LoadOutcome(
            rows={table.name: int(counts.get(table.name, 0)) for table in plan.report.tables},
            load_id=load_id,
            cursor=extraction.cursor,
        )
        spec = _load_spec(plan, outcome, run_id, extraction.days)
        sources = {table: paths for table, paths in files.items() if table in outcome.rows}
        try:
            with warehouse_writer(settings, holder) as (connection, dialect):
                outcome.schema_changes = apply_load(connection, spec, sources, dialect)
                outcome.table_rows = table_rows(connection, spec)
        except warehouse_errors(settings) as exc:  # refused rows, or a warehouse that cannot open
            raise LoadError(f"loading into the warehouse failed: {_reason(exc)}") from None
    finally:
        try:
            clear_pipeline(settings, name)
        except OSError as exc:  # the run's outcome stands: the next run deletes it first
            logger.warning("%s: could not delete dlt's working folder: %s", name, exc)
    return outcome


def _normalized_files(pipeline: Any) -> tuple[str, dict[str, list[str]]]:
    """The load id of the package dlt normalised, and its Parquet files per table."""
    packages = pipeline.list_normalized_load_packages()
    if not packages:  # nothing was extracted: the load still replaces, and is recorded
        return f"{utc_now().timestamp():.6f}", {}
    load_id = packages[-1]
    files: dict[str, list[str]] = {}
    for job in pipeline.get_load_package_info(load_id).jobs["new_jobs"]:
        if job.job_file_info.file_format == "parquet":
            files.setdefault(job.job_file_info.table_name, []).append(job.file_path)
    return load_id, files


def _load_spec(
    plan: RunPlan, outcome: LoadOutcome, run_id: int, loaded_days: set[dt.date]
) -> LoadSpec:
    method = plan.dataset.update_method
    days: tuple[dt.date, ...] = ()
    if method == "partition" and plan.window is not None:
        days = tuple(sorted(set(plan.window.days()) | loaded_days))
    return LoadSpec(
        schema=plan.dataset.name,
        method=method,
        tables=plan.report.tables,
        load_id=outcome.load_id or "",
        run_id=run_id,
        rows=outcome.rows,
        merge_key=plan.merge_key if method == "merge" else (),
        days=days,
        cursor=outcome.cursor,
    )


def _cause(exc: BaseException) -> BaseException:
    """The first LeadferryError behind dlt's wrappers, else the innermost exception."""
    seen = exc
    while True:
        if isinstance(seen, LeadferryError):
            return seen
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            return exc
        seen = inner


_ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?_?\w*(?:Error|Exception): .+$", re.MULTILINE)


def _reason(exc: BaseException) -> str:
    """One line saying why a load failed: the database's own error, not dlt's wrappers (whose
    first line ends in "with exception:")."""
    seen = _cause(exc)
    while not isinstance(seen, LeadferryError) and (seen.__cause__ or seen.__context__):
        seen = seen.__cause__ or seen.__context__
    text = str(seen).strip() or type(seen).__name__
    lines = _ERROR_LINE.findall(text)
    return (lines[-1] if lines else text.splitlines()[0]).strip()
