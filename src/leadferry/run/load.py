"""Loading a run's batches: dlt extracts them into Parquet files, then
:mod:`leadferry.apply` writes every table of the dataset in one transaction."""

from __future__ import annotations

import datetime as dt
import logging
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from leadferry.apply import DAY_COLUMN, LoadSpec, apply_load
from leadferry.clock import utc_now
from leadferry.connectors.base import Table, TableBatch
from leadferry.errors import ConfigError, LeadferryError, LoadError
from leadferry.run.plan import RunPlan
from leadferry.settings import Settings
from leadferry.warehouse import warehouse_errors, warehouse_writer

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class LoadOutcome:
    rows: dict[str, int] = field(default_factory=dict)
    load_id: str | None = None
    schema_changes: list[str] = field(default_factory=list)
    cursor: dt.datetime | None = None
    """The newest change loaded, for incremental datasets."""
    table_rows: int | None = None
    """Rows in the main table once the load committed."""


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
        self.rows: dict[str, int] = {}
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
        self.rows[table.name] = self.rows.get(table.name, 0) + chunk.num_rows
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

    dlt extracts without the warehouse lock; then every table of the dataset and the record of
    the load change in one transaction under the lock (:mod:`leadferry.apply`). dlt's normalise
    is not run: for Parquet files of Arrow items it would only read their row counts and link
    them into another package (a fifth of a small run's CPU in a long-lived process).
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
            except PipelineStepFailed as exc:
                raise _cause(exc) from None
        load_id, files = _extracted_files(pipeline)
        outcome = LoadOutcome(
            rows={table.name: extraction.rows.get(table.name, 0) for table in plan.report.tables},
            load_id=load_id,
            cursor=extraction.cursor,
        )
        spec = _load_spec(plan, outcome, run_id, extraction.days)
        sources = {table: paths for table, paths in files.items() if table in outcome.rows}
        try:
            with warehouse_writer(settings, holder) as (connection, dialect):
                applied = apply_load(connection, spec, sources, dialect)
            outcome.schema_changes, outcome.table_rows = applied.schema_changes, applied.table_rows
        except warehouse_errors(settings) as exc:  # refused rows, or a warehouse that cannot open
            raise LoadError(f"loading into the warehouse failed: {_reason(exc)}") from None
    finally:
        try:
            clear_pipeline(settings, name)
        except OSError as exc:  # the run's outcome stands: the next run deletes it first
            logger.warning("%s: could not delete dlt's working folder: %s", name, exc)
    return outcome


def _extracted_files(pipeline: Any) -> tuple[str, dict[str, list[str]]]:
    """The load id of the package dlt extracted, and its Parquet files per table."""
    packages = pipeline.list_extracted_load_packages()
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
