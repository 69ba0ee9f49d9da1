"""The DuckDB warehouse: who may open it when, and read-only access for query, preview and export.

DuckDB lets one process write a file, or many processes read it, never both. leadferry keeps that
promise with an advisory lock file beside the warehouse: a run holds it exclusively only while it
loads (fetching happens outside it), and readers hold it shared for the length of one query. Anyone
who waits does so for a bounded time and is then told who holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadferry.errors import BusyError, ConfigError, LoadError, NotFoundError
from leadferry.settings import Settings

if TYPE_CHECKING:
    import duckdb

    from leadferry.apply import CommittedLoad

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
# Every column but dlt's bookkeeping (_dlt_load_id, _dlt_id).
_USER_COLUMNS = "columns(lambda c: not starts_with(c, '_dlt_'))"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@contextlib.contextmanager
def warehouse_lock(
    path: Path, *, exclusive: bool, timeout: float, holder: str = ""
) -> Iterator[None]:
    """Hold the warehouse's lock (exclusive to write, shared to read) for the block.

    Raises:
        BusyError: the lock was not free within *timeout* seconds; says who holds it.
    """
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(_busy_message(lock_path, timeout)) from None
                time.sleep(_POLL_SECONDS)
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
        try:
            yield
        finally:
            if exclusive:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def warehouse_writer(settings: Settings, holder: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the warehouse, under the exclusive lock for the block.

    Raises:
        BusyError: another process held the lock longer than ``settings.writer_timeout``.
    """
    import duckdb

    with warehouse_lock(
        settings.warehouse_path, exclusive=True, timeout=settings.writer_timeout, holder=holder
    ):
        # DuckDB may otherwise take 80% of RAM while loading, so peak memory grew with the run;
        # bounded, it spills. Insertion order is not needed: tables have keys, not positions.
        # One thread: the machine's other cores fetch and parse the next run's pages.
        connection = duckdb.connect(
            str(settings.warehouse_path),
            config={
                "preserve_insertion_order": False,
                "memory_limit": settings.warehouse_memory,
                "threads": 1,
            },
        )
        try:
            yield connection
        finally:
            connection.close()


def _busy_message(lock_path: Path, timeout: float) -> str:
    holder = lock_path.read_text(errors="replace").strip() or "another leadferry process"
    return f"the warehouse is busy: {holder} is writing to it (waited {timeout:g}s); try again"


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Warehouse:
    """Read-only access to the DuckDB warehouse file."""

    def __init__(self, path: Path, lock_timeout: float = 10.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection, held under the shared lock for the block."""
        if not self.path.exists():
            raise NotFoundError(f"there is no warehouse yet at {self.path}: run a dataset first")
        import duckdb

        with warehouse_lock(self.path, exclusive=False, timeout=self.lock_timeout):
            connection = duckdb.connect(str(self.path), read_only=True)
            try:
                yield connection
            finally:
                connection.close()

    def query(self, sql: str, limit: int | None = None) -> QueryResult:
        """Run one read-only SQL statement; ConfigError carries DuckDB's message."""
        import duckdb

        with self.reader() as connection:
            try:
                relation = connection.sql(sql)
                if relation is None:
                    return QueryResult([], [])
                if limit is not None:
                    relation = relation.limit(limit)
                return QueryResult(list(relation.columns), relation.fetchall())
            except duckdb.Error as exc:
                raise ConfigError(f"query failed: {first_line(exc)}") from None

    def committed_load(self, schema: str, run_id: int) -> CommittedLoad | None:
        """The load run *run_id* committed into dataset *schema*; None if it committed none
        (or there is no warehouse yet).

        Raises:
            BusyError: a run held the warehouse longer than the lock timeout.
            LoadError: the warehouse cannot be read.
        """
        import duckdb

        from leadferry.apply import committed_load

        if not self.path.exists():
            return None
        with self.reader() as connection:
            try:
                return committed_load(connection, _identifier(schema), run_id)
            except duckdb.Error as exc:
                raise LoadError(f"cannot read the warehouse's loads: {first_line(exc)}") from None

    def tables(self, schema: str) -> list[str]:
        """The user tables of a dataset's schema (bookkeeping tables, named ``_...``, left out)."""
        with self.reader() as connection:
            rows = connection.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and not starts_with(table_name, '_') "
                "order by table_name",
                [_identifier(schema)],
            ).fetchall()
        return [row[0] for row in rows]

    def preview(self, schema: str, table: str, limit: int) -> QueryResult:
        """The first *limit* rows of ``schema.table``, without dlt's bookkeeping columns."""
        name = f'"{_identifier(schema)}"."{_identifier(table)}"'
        return self.query(f"select {_USER_COLUMNS} from {name}", limit=limit)

    def export(self, schema: str, table: str, fmt: str, output: Path) -> int:
        """Write ``schema.table`` to *output* as CSV or Parquet; return the row count."""
        if fmt not in ("csv", "parquet"):
            raise ConfigError(f"unknown export format {fmt!r}: use csv or parquet")
        name = f'"{_identifier(schema)}"."{_identifier(table)}"'
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        with self.reader() as connection:
            relation = connection.sql(f"select {_USER_COLUMNS} from {name}")
            rows = connection.sql(f"select count(*) from {name}").fetchall()[0]
            if fmt == "csv":
                relation.write_csv(str(partial), header=True)
            else:
                relation.write_parquet(str(partial))
        partial.replace(output)
        return int(rows[0])


def first_line(exc: BaseException) -> str:
    """The first line of a database error: its message without DuckDB's hints."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"{name!r} is not a valid dataset or table name")
    return name


def drop_schema(settings: Settings, dataset: str, leftovers: Sequence[str] = ()) -> None:
    """Drop a dataset's schema and its dlt work folder, and nothing of any other dataset.

    *leftovers* are other schemas the dataset owns: ``<dataset>_staging``, which dlt's merge
    left in warehouses loaded before leadferry applied loads itself, when no dataset has that
    name.
    """
    import duckdb

    schemas = [_identifier(dataset), *(_identifier(name) for name in leftovers)]
    if settings.warehouse_path.exists():
        with warehouse_lock(
            settings.warehouse_path,
            exclusive=True,
            timeout=settings.lock_timeout,
            holder=f"removal of dataset {dataset}",
        ):
            connection = duckdb.connect(str(settings.warehouse_path))
            try:
                for schema in schemas:
                    connection.execute(f'drop schema if exists "{schema}" cascade')
            finally:
                connection.close()
    shutil.rmtree(settings.pipelines_dir / schemas[0], ignore_errors=True)
