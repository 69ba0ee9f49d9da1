"""The warehouse: which one (:func:`open_warehouse`), and for the DuckDB file who may open it
when, and sandboxed reads for query, preview and export (PostgreSQL's: :mod:`leadferry.postgres`).

DuckDB lets one process write a file, or many processes read it, never both. leadferry keeps that
promise with advisory lock files beside the warehouse. A writer holds ``warehouse.duckdb.lock``
exclusively while it loads (fetching happens outside it); readers hold it shared for one
statement. A writer first takes ``warehouse.duckdb.lock.writer``: readers pass it on their way in,
so none starts while a writer waits, and every running read checks it and cancels itself, so a
long query never holds a run up. Anyone who waits does so for a bounded time and is then told who
holds the lock.

A ``leadferry run`` of one dataset lets go of the file as soon as its load is done. A process of
many loads (``serve``'s pool, ``leadferry worker``, a ``leadferry run`` of several datasets:
:func:`keep_open_between_loads`) keeps it attached, and both locks held, between its loads:
attaching a file of thousands of datasets reads its whole catalog and detaching checkpoints it,
about a second of CPU together at 2,000 datasets, which a busy worker would otherwise pay every
run. It lets go once it has loaded nothing for :data:`KEEP_OPEN_SECONDS`, and when anyone else
waits: whoever waits for either lock holds ``warehouse.duckdb.lock.waiting`` shared meanwhile,
and the holder probes it with a non-blocking exclusive lock every :data:`_POLL_SECONDS` and
after each load, then lets go after the load it is doing, or after the loads it already has
queued for at most :data:`_MAKE_WAY_SECONDS`, and lets the waiters in before its next load
takes the file again. Waits stay bounded by their timeouts, and the lock file names the holder
throughout. A kept file is checkpointed before what DuckDB holds of it in memory nears the
memory limit (:data:`_PINNED_SHARE`).

Every read runs in a sandbox: a private DuckDB instance that attaches the warehouse read-only,
with external access off and its configuration locked, so SQL can read the warehouse's tables and
no file, URL or extension (``docs/architecture.md``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from leadferry.errors import (
    BusyError,
    ConfigError,
    LoadError,
    NotFoundError,
    QueryTimeoutError,
    StorageError,
    first_line,
)
from leadferry.exporting import check_export, write_export

if TYPE_CHECKING:
    import duckdb

    from leadferry.apply import CommittedLoad, Connection, Dialect
    from leadferry.postgres import PostgresWarehouse
    from leadferry.settings import Settings

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_EXPORT_BATCH_ROWS = 100_000
_POLL_SECONDS = 0.05
# Every column but dlt's bookkeeping (_dlt_load_id, _dlt_id).
_USER_COLUMNS = "columns(lambda c: not starts_with(c, '_dlt_'))"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_STATEMENT_TIMEOUT = 60.0
"""Seconds a read may run before it is cancelled (``leadferry query --timeout``)."""
_READ_STATEMENTS = ("SELECT", "EXPLAIN")
"""What a query may be: SELECT (with SHOW, DESCRIBE, SUMMARIZE, FROM-first and VALUES) and
EXPLAIN. Anything else could change the reader's own in-memory database or its session."""


@contextlib.contextmanager
def warehouse_lock(
    path: Path, *, exclusive: bool, timeout: float, holder: str = ""
) -> Iterator[None]:
    """Hold the warehouse's lock (exclusive to write, shared to read) for the block.

    A writer announces itself on the writer lock before it waits for the lock itself, and keeps
    both until it is done: readers that come later wait behind it, and readers inside cancel
    themselves (:class:`_Watchdog`), so a writer waits for no read.

    Raises:
        BusyError: the lock was not free within *timeout* seconds; says who holds it.
    """
    if exclusive:
        held = _ExclusiveLock(path, timeout, holder)
        try:
            yield
        finally:
            held.release()
        return
    lock_path = _lock_path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    writer = _acquire(_writer_path(path), fcntl.LOCK_SH, deadline, lock_path, timeout)
    try:
        fd = _acquire(lock_path, fcntl.LOCK_SH, deadline, lock_path, timeout)
    finally:
        _release(writer)
    try:
        yield
    finally:
        _release(fd)


class _ExclusiveLock:
    """The writer lock and the lock, both held exclusively from making until :meth:`release`,
    with the holder's name in the lock file.

    Raises:
        BusyError: the locks were not free within *timeout* seconds; says who holds them.
    """

    def __init__(self, path: Path, timeout: float, holder: str) -> None:
        self.path = path
        lock_path = _lock_path(path)
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        self._writer = _acquire(_writer_path(path), fcntl.LOCK_EX, deadline, lock_path, timeout)
        try:
            self._fd = _acquire(lock_path, fcntl.LOCK_EX, deadline, lock_path, timeout)
        except BaseException:
            _release(self._writer)
            raise
        self._waiting = os.open(_waiting_path(lock_path), os.O_RDWR | os.O_CREAT, 0o600)
        self.name(holder)

    def name(self, holder: str) -> None:
        """Say in the lock file who holds it (a waiter that times out is told)."""
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, holder.encode(), 0)

    def others_wait(self) -> bool:
        """Whether anyone (a reader, another writer, in any process) waits for the lock."""
        try:
            fcntl.flock(self._waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._waiting, fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        os.close(self._waiting)
        os.ftruncate(self._fd, 0)
        _release(self._fd)
        _release(self._writer)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _writer_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock.writer")


def _waiting_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".waiting")


def _acquire(path: Path, mode: int, deadline: float, lock_path: Path, timeout: float) -> int:
    """An open descriptor of *path* holding *mode*, polled until *deadline*.

    While it waits it holds the waiting lock shared, which tells a process that keeps the
    warehouse open between its loads to let go.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    waiting: int | None = None
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise BusyError(_busy_message(lock_path, timeout)) from None
                if waiting is None:
                    waiting = _announce_waiting(lock_path)
                time.sleep(_POLL_SECONDS)
    finally:
        if waiting is not None:
            os.close(waiting)


def _announce_waiting(lock_path: Path) -> int:
    """The waiting lock's descriptor, held shared (a holder's probe holds it for an instant)."""
    fd = os.open(_waiting_path(lock_path), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _let_waiters_in(path: Path, until: float) -> None:
    """Wait until nobody waits for the warehouse's locks (they got in), or until *until*."""
    fd = os.open(_waiting_path(_lock_path(path)), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while time.monotonic() < until:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(_POLL_SECONDS)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
    finally:
        os.close(fd)


def _release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def warehouse_writer(settings: Settings, holder: str) -> Iterator[tuple[Connection, Dialect]]:
    """A read-write connection to the warehouse and its dialect, for one load.

    The DuckDB file is held under the exclusive lock for the block; PostgreSQL does its own
    locking (:mod:`leadferry.postgres`).

    Raises:
        BusyError: another process held the lock longer than ``settings.writer_timeout``.
        StorageError: the PostgreSQL warehouse cannot be reached.
    """
    url = settings.warehouse_postgres_url
    if url is not None:
        from leadferry.postgres import PostgresDialect, writer

        with writer(url, settings.writer_timeout) as postgres:
            yield postgres, PostgresDialect()
        return
    from leadferry.apply import DUCKDB

    with _LOADING.attached(settings, holder) as connection:
        yield connection, DUCKDB


def warehouse_errors(settings: Settings) -> tuple[type[Exception], ...]:
    """The errors the warehouse's driver raises when it refuses a statement or a connection."""
    import duckdb

    if settings.warehouse_postgres_url is None:
        return (duckdb.Error,)
    import psycopg

    return (duckdb.Error, psycopg.Error)


WarehouseReader: TypeAlias = "Warehouse | PostgresWarehouse"
"""Either warehouse's readers: the same methods (query, tables, preview, export, reader...)."""


def open_warehouse(
    settings: Settings,
    lock_timeout: float | None = None,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> WarehouseReader:
    """The warehouse to read, as ``LEADFERRY_WAREHOUSE_URL`` names it (lock timeout: the
    settings' unless given)."""
    timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
    url = settings.warehouse_postgres_url
    if url is not None:
        from leadferry.postgres import PostgresWarehouse

        return PostgresWarehouse(url, timeout, statement_timeout)
    return Warehouse(settings.warehouse_path, timeout, statement_timeout)


KEEP_OPEN_SECONDS = 2.0
"""Seconds a long-lived process keeps the warehouse open after a load, for the next one."""
_MAKE_WAY_SECONDS = 1.0
"""Once someone waits, how long this process goes on with the loads it already has queued
before it lets go (each hand-over costs an attach and a checkpoint, a second of CPU at 2,000
datasets); and after it let go, how long its next load lets the waiters in first, since its
queued loads would otherwise take the file straight back."""
_PINNED_SHARE = 0.25
"""Share of the memory limit that a kept file's memory DuckDB cannot evict (the indexes loads
read, the rows committed since the last checkpoint: half a MB a small load) may reach before
it is checkpointed. Past the limit a load fails, and so does the checkpoint that would free it,
and the log then holds more than any opener can replay within the limit."""
_PINNED_TAGS = ("ART_INDEX", "IN_MEMORY_TABLE")
_SIZE = re.compile(r"^([\d.]+) (bytes|KiB|MiB|GiB|TiB)$")
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


class _LoadingInstance:
    """The in-memory DuckDB of this process that loads attach the warehouse file to, one at a
    time, and detach from when done (which checkpoints the file and closes it, so other
    processes can open it again), or later when the process keeps it open between its loads
    (:meth:`keep_open`).

    Making a DuckDB instance (its built-in extensions, its settings) costs about 30 ms of CPU,
    a tenth of a small run; attaching a file to one that exists costs about 4 (but 0.5 to 0.7 s
    once the file holds 2,000 datasets, and the checkpoint of the detach 0.35 to 0.45 s). The
    instance is made for one warehouse (its spill folder cannot change once used) and memory
    limit: a process loads one warehouse, tests load many and get a new instance for each.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instance: duckdb.DuckDBPyConnection | None = None
        self._made_for: tuple[str, str] | None = None
        self._pinned_cap = float("inf")
        """Bytes of the instance's memory that cannot be evicted before the kept file is
        checkpointed (:data:`_PINNED_SHARE` of its limit, read once when it is made)."""
        self._held: _ExclusiveLock | None = None
        """The warehouse's locks while the file is attached."""
        self._keepers: list[str] = []
        """Who keeps the file open between loads (the last named is the lock's holder then)."""
        self._idle_since = 0.0
        self._made_way_at: float | None = None
        """When the file was last let go because someone else waited."""
        self._waited_since: float | None = None
        """Since when someone else waits for the file this process holds."""
        self._queued = 0
        """Loads of this process waiting for the one that runs."""
        self._queue_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop_watching = threading.Event()

    @contextlib.contextmanager
    def attached(self, settings: Settings, holder: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse for one load, under its exclusive lock.

        Raises:
            BusyError: another process held the lock longer than ``settings.writer_timeout``.
        """
        with self._queue_lock:
            self._queued += 1
        with self._lock:  # the warehouse lock lets one load run anyway
            with self._queue_lock:
                self._queued -= 1
            instance = self._attach(settings, holder)
            try:
                connection = instance.cursor()
                try:
                    connection.execute("use warehouse")
                    yield connection
                finally:
                    connection.close()  # rolls back a transaction the block left open
            except BaseException:
                self._let_go()  # a failed load may leave the attached file unusable
                raise
            self._after_load()

    def _attach(self, settings: Settings, holder: str) -> duckdb.DuckDBPyConnection:
        """The instance with the warehouse attached as ``warehouse`` and its locks held by
        *holder*."""
        path, memory = settings.warehouse_path, settings.warehouse_memory
        if self._held is not None and self._made_for == (str(path), memory):
            assert self._instance is not None
            self._held.name(holder)
            return self._instance
        self._let_go()
        if self._made_way_at is not None:
            _let_waiters_in(path, self._made_way_at + _MAKE_WAY_SECONDS)
            self._made_way_at = None
        held = _ExclusiveLock(path, settings.writer_timeout, holder)
        try:
            instance = self._instance_for(str(path), memory)
            instance.execute(f"attach {_literal(str(path))} as warehouse")
        except BaseException:
            held.release()
            raise
        self._held = held
        return instance

    def _after_load(self) -> None:
        """Keep the file for the next load if this process keeps it and nobody waits,
        checkpointed once its memory that cannot be evicted grows past its share."""
        import duckdb

        assert self._held is not None
        assert self._instance is not None
        if not self._keepers:
            self._let_go()
            return
        if self._held.others_wait():
            now = time.monotonic()
            self._waited_since = self._waited_since or now
            if not self._queued or now - self._waited_since >= _MAKE_WAY_SECONDS:
                self._make_way()
                return
        else:
            self._waited_since = None
        try:
            if _pinned_bytes(self._instance) > self._pinned_cap:
                self._instance.execute("checkpoint warehouse")
        except duckdb.Error as exc:  # a full disk: the load stands, as in _detach
            logger.info("the warehouse could not be checkpointed (%s)", first_line(exc))
            self._let_go()
            return
        self._held.name(f"{self._keepers[-1]} (keeping it open between runs)")
        self._idle_since = time.monotonic()

    def _make_way(self) -> None:
        """Let go of the file for someone who waits."""
        self._let_go()
        self._made_way_at = time.monotonic()
        self._waited_since = None

    def _let_go(self) -> None:
        """Detach the file, if attached, and release its locks."""
        if self._held is None:
            return
        try:
            if self._instance is not None:
                self._detach(self._instance)
        finally:
            self._held.release()
            self._held = None

    def _instance_for(self, path: str, memory: str) -> duckdb.DuckDBPyConnection:
        import duckdb

        if self._instance is not None and self._made_for != (path, memory):
            self._instance.close()
            self._instance = None
        if self._instance is None:
            # DuckDB may otherwise take 80% of RAM while loading, so peak memory grew with the
            # run; bounded, it spills beside the file, as it would with the file open.
            # Insertion order is not needed: tables have keys, not positions. One thread: the
            # machine's other cores fetch and parse the next run's pages.
            self._instance = duckdb.connect(
                ":memory:",
                config={
                    "memory_limit": memory,
                    "temp_directory": path + ".tmp",
                    "preserve_insertion_order": False,
                    "threads": 1,
                },
            )
            self._made_for = (path, memory)
            self._pinned_cap = _PINNED_SHARE * _memory_limit(self._instance)
        return self._instance

    def _detach(self, instance: duckdb.DuckDBPyConnection) -> None:
        """Detach the file; a checkpoint that fails (a full disk) does not fail the load.

        What the block committed is in the file's write-ahead log by then, and whoever opens
        the file next replays it: raising here would call a committed load failed.
        """
        try:
            instance.execute("detach warehouse")
        except BaseException as exc:
            # The file may still be open: closing the instance closes it for sure.
            with contextlib.suppress(Exception):
                instance.close()
            self._instance = None
            if not isinstance(exc, Exception):  # an interrupt still ends the process
                raise
            # INFO, not WARNING: nothing is lost and the user has nothing to do; a failed run
            # still prints one line.
            logger.info(
                "the warehouse could not be checkpointed (%s); its write-ahead log keeps what "
                "was committed",
                first_line(exc),
            )

    @contextlib.contextmanager
    def keep_open(self, who: str) -> Iterator[None]:
        """Keep the file attached between loads for the block (:func:`keep_open_between_loads`)."""
        with self._lock:
            self._keepers.append(who)
            if self._watcher is None:
                self._stop_watching.clear()
                self._watcher = threading.Thread(
                    target=self._watch, name="warehouse-keeper", daemon=True
                )
                self._watcher.start()
        try:
            yield
        finally:
            with self._lock:
                self._keepers.remove(who)
                watcher = None if self._keepers else self._watcher
                if watcher is not None:
                    self._watcher = None
                    self._stop_watching.set()
                    self._let_go()
            if watcher is not None:
                watcher.join()

    def _watch(self) -> None:
        """Let go of the file once it has been idle too long or someone waits for it.

        Only while no load runs: a load that runs looks for waiters itself when it ends.
        """
        while not self._stop_watching.wait(_POLL_SECONDS):
            if self._held is None or not self._lock.acquire(blocking=False):
                continue
            try:
                held = self._held
                if held is not None and held.others_wait():
                    self._make_way()
                elif held is not None and time.monotonic() - self._idle_since >= KEEP_OPEN_SECONDS:
                    self._let_go()
            finally:
                self._lock.release()


def _pinned_bytes(instance: duckdb.DuckDBPyConnection) -> int:
    tags = ", ".join(f"'{tag}'" for tag in _PINNED_TAGS)
    found = instance.execute(
        f"select sum(memory_usage_bytes) from duckdb_memory() where tag in ({tags})"
    ).fetchone()
    return int(found[0] or 0) if found else 0


def _memory_limit(instance: duckdb.DuckDBPyConnection) -> float:
    """The instance's memory limit in bytes (DuckDB shows it as, say, ``91.5 MiB``)."""
    found = instance.execute("select current_setting('memory_limit')").fetchone()
    size = _SIZE.match(str(found[0] if found else ""))
    if size is None:
        return float("inf")
    return float(size.group(1)) * 1024 ** _UNITS.index(size.group(2))


_LOADING = _LoadingInstance()


def keep_open_between_loads(who: str) -> contextlib.AbstractContextManager[None]:
    """Keep the DuckDB warehouse attached, and its locks held, between this process's loads
    for the block: for ``serve`` and ``leadferry worker``, named *who* in the lock file.

    The file is let go once no load came for :data:`KEEP_OPEN_SECONDS`, at once when anyone
    else waits for it, and when the block ends.
    """
    return _LOADING.keep_open(who)


def _busy_message(lock_path: Path, timeout: float) -> str:
    holder = lock_path.read_text(errors="replace").strip() or "another leadferry process"
    return f"the warehouse is busy: {holder} is writing to it (waited {timeout:g}s); try again"


class _Watchdog:
    """Cancels a read when its time is up or when a writer waits for the warehouse.

    A thread polls the writer lock (shared, without blocking: a writer holds it exclusively from
    the moment it starts waiting) and the clock, and interrupts the connection, which stops the
    statement that runs and any that follows.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path, timeout: float | None):
        self.connection = connection
        self.writer_path = _writer_path(path)
        self.timeout = timeout
        self.cause: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="warehouse-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        fd = os.open(self.writer_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not self._done.wait(_POLL_SECONDS):
                if deadline is not None and time.monotonic() >= deadline:
                    self.cause = "timeout"
                elif _writer_waits(fd):
                    self.cause = "writer"
                else:
                    continue
                self.connection.interrupt()
                return
        finally:
            os.close(fd)

    def error(self) -> Exception:
        """What to tell the reader whose statement was interrupted."""
        if self.cause == "writer":
            return BusyError(
                "the read was cancelled: a run is loading into the warehouse; "
                "try again when it has finished"
            )
        return QueryTimeoutError(
            f"the query ran longer than {self.timeout:g}s and was cancelled: "
            "narrow it, or allow it more time (leadferry query --timeout SECONDS)"
        )


def _writer_waits(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class SchemaReads:
    """What both warehouses read alike, each through its own :meth:`reader`: a dataset's
    tables, and the load a run committed."""

    def reader(self, *, timed: bool = True) -> contextlib.AbstractContextManager[Any]:
        """A read-only connection for the block (each warehouse says how)."""
        raise NotImplementedError

    def _unreadable(self, exc: Exception) -> bool:
        """Whether *exc*, raised reading the loads, means they cannot be read (else it goes on
        to :meth:`reader`, which words it)."""
        raise NotImplementedError

    def _before_loads(self, connection: Any, schema: str) -> None:
        """What reading the loads of *schema* waits for first (nothing, unless overridden)."""

    def committed_load(self, schema: str, run_id: int) -> CommittedLoad | None:
        """The load run *run_id* committed into dataset *schema*; None if it committed none.

        Raises:
            BusyError: a run held the warehouse (or the dataset) longer than the lock timeout.
            LoadError: the warehouse cannot be read.
        """
        from leadferry.apply import committed_load

        with self.reader() as connection:
            try:
                self._before_loads(connection, schema)
                return committed_load(connection, _identifier(schema), run_id)
            except Exception as exc:
                if not self._unreadable(exc):
                    raise
                raise LoadError(f"cannot read the warehouse's loads: {first_line(exc)}") from None

    def tables(self, schema: str) -> list[str]:
        """The user tables of a dataset's schema (bookkeeping tables, named ``_...``, left out)."""
        with self.reader() as connection:
            return _tables(connection, schema)


class Warehouse(SchemaReads):
    """Sandboxed, read-only access to the DuckDB warehouse file."""

    def __init__(
        self,
        path: Path,
        lock_timeout: float = 10.0,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout

    @contextlib.contextmanager
    def reader(self, *, timed: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A sandboxed read-only connection, held under the shared lock for the block.

        Its statements are cancelled as soon as a writer waits and, when *timed*, once the block
        has run for the statement timeout.

        Raises:
            NotFoundError: there is no warehouse yet.
            BusyError: a writer held the warehouse past the lock timeout, or came while reading.
            QueryTimeoutError: the block's statements ran out of time.
            StorageError: the warehouse file cannot be opened (corrupt, unreadable).
        """
        if not self.path.exists():
            raise NotFoundError(f"there is no warehouse yet at {self.path}: run a dataset first")
        import duckdb

        with warehouse_lock(self.path, exclusive=False, timeout=self.lock_timeout):
            connection = self._sandbox()
            try:
                timeout = self.statement_timeout if timed else None
                with _Watchdog(connection, self.path, timeout) as watchdog:
                    try:
                        yield connection
                    except duckdb.InterruptException:
                        raise watchdog.error() from None
            finally:
                connection.close()

    def _sandbox(self) -> duckdb.DuckDBPyConnection:
        """A private in-memory DuckDB with the warehouse attached read-only and nothing else
        reachable: external access off (no file but the warehouse, no URL, no extension), then
        the configuration locked so that no statement can turn it back on. A private instance,
        as DuckDB shares one per file and process, settings included."""
        import duckdb

        connection = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        try:
            connection.execute(f"attach {_literal(str(self.path))} as warehouse (read_only)")
            connection.execute("use warehouse")
            connection.execute("set enable_progress_bar = false")
            # Spill where DuckDB would beside the file, not into the working directory.
            connection.execute(f"set temp_directory = {_literal(str(self.path) + '.tmp')}")
            connection.execute("set enable_external_access = false")
            connection.execute("set lock_configuration = true")
        except duckdb.Error as exc:
            connection.close()
            raise StorageError(
                f"cannot open the warehouse {self.path}: {first_line(exc)}; restore it from a "
                "backup, or move it aside and run your datasets again"
            ) from None
        return connection

    def query(self, sql: str) -> QueryResult:
        """Run one read-only SQL statement in the sandbox.

        Raises:
            ConfigError: not exactly one SELECT or EXPLAIN, or DuckDB refused it (its message).
            QueryTimeoutError: it ran longer than the statement timeout.
        """
        import duckdb

        with self.reader() as connection:
            try:
                _check_statement(connection, sql)
                relation = connection.sql(sql)
                if relation is None:
                    return QueryResult([], [])
                return QueryResult(
                    list(relation.columns), _interruptible(connection, relation.fetchall)
                )
            except duckdb.InterruptException:
                raise
            except duckdb.PermissionException as exc:
                raise ConfigError(
                    f"query refused: it may read only the warehouse's tables ({first_line(exc)})"
                ) from None
            except duckdb.Error as exc:
                raise ConfigError(f"query failed: {first_line(exc)}") from None

    def committed_load(self, schema: str, run_id: int) -> CommittedLoad | None:
        """As :meth:`SchemaReads.committed_load`; None too when there is no warehouse yet."""
        if not self.path.exists():
            return None
        return super().committed_load(schema, run_id)

    def _unreadable(self, exc: Exception) -> bool:
        import duckdb

        return isinstance(exc, duckdb.Error)

    def preview(self, schema: str, table: str, limit: int) -> QueryResult:
        """The first *limit* rows of ``schema.table``, without dlt's bookkeeping columns.

        Raises:
            NotFoundError: nothing was loaded into the table yet.
        """
        with self.reader() as connection:
            relation = connection.sql(
                f"select {_USER_COLUMNS} from {_table(connection, schema, table)}"
            )
            relation = relation.limit(limit)
            return QueryResult(list(relation.columns), relation.fetchall())

    def rows_per_day(
        self, schema: str, table: str, column: str, days: int
    ) -> list[tuple[Any, int]]:
        """Rows of ``schema.table`` per value of the day *column*, for its last *days* days
        that hold rows, oldest first.

        Raises:
            NotFoundError: nothing was loaded into the table yet.
        """
        with self.reader() as connection:
            found = connection.execute(
                f'select "{_identifier(column)}" as day, count(*) as n '
                f"from {_table(connection, schema, table)} where day is not null "
                f"group by day order by day desc limit {int(days)}"
            ).fetchall()
        return [(day, int(rows)) for day, rows in reversed(found)]

    def export(self, schema: str, table: str, fmt: str, output: Path) -> int:
        """Write ``schema.table`` to *output* as CSV or Parquet; return the row count.

        Arrow batches are read from the sandbox and written by pyarrow, so memory holds one
        batch and DuckDB itself never writes a file. The rows go to a hidden file beside
        *output*, renamed over it once complete: *output* is either untouched or whole, and no
        partial file is left behind on a failure, a full disk or Ctrl-C.

        Raises:
            ConfigError: an unknown format, or *output* is a folder, device, pipe or socket, or
                its folder cannot be made.
            NotFoundError: nothing was loaded into the table yet.
            BusyError: a run came to load while exporting (nothing was written).
            StorageError: writing failed (a full disk...); nothing was written.
        """
        check_export(fmt, output)
        with self.reader(timed=False) as connection:
            name = _table(connection, schema, table)
            relation = connection.sql(f"select {_USER_COLUMNS} from {name}")
            return write_export(relation.to_arrow_reader(_EXPORT_BATCH_ROWS), fmt, output)


def _interruptible(connection: duckdb.DuckDBPyConnection, work: Callable[[], _T]) -> _T:
    """*work* done on a thread while this one waits, so that Ctrl-C, which only the main thread
    sees and DuckDB does not look for while it works, interrupts the statement at once."""
    outcome: dict[str, Any] = {}
    # An Event, not Thread.join: a join that Ctrl-C interrupts may take the thread for finished.
    done = threading.Event()

    def attempt() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed over to the waiting thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=attempt, name="warehouse-read", daemon=True).start()
    try:
        while not done.wait(_POLL_SECONDS):
            pass
    except KeyboardInterrupt:
        connection.interrupt()
        done.wait()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _check_statement(connection: duckdb.DuckDBPyConnection, sql: str) -> None:
    statements = connection.extract_statements(sql)
    if not statements:
        raise ConfigError("the query is empty: give one SQL statement")
    if len(statements) > 1:
        raise ConfigError(
            f"give exactly one SQL statement (this has {len(statements)}): run them one by one"
        )
    kind = statements[0].type.name
    if kind not in _READ_STATEMENTS:
        raise ConfigError(
            f"query runs SELECT and EXPLAIN only, not {kind}: the warehouse is read-only here"
        )


def _tables(connection: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = connection.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and not starts_with(table_name, '_') "
        "order by table_name",
        [_identifier(schema)],
    ).fetchall()
    return [row[0] for row in rows]


def _table(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """``"schema"."table"``, quoted, once it is known to exist.

    Raises:
        NotFoundError: nothing was loaded into it yet.
    """
    if _identifier(table) not in _tables(connection, schema):
        raise NotFoundError(f"dataset {schema} has no {table} rows yet: run it first")
    return f'"{schema}"."{table}"'


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"{name!r} is not a valid dataset or table name")
    return name


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def drop_schema(settings: Settings, dataset: str, leftovers: Sequence[str] = ()) -> None:
    """Drop a dataset's schema and its dlt work folder, and nothing of any other dataset.

    *leftovers* are other schemas the dataset owns: ``<dataset>_staging``, which dlt's merge
    left in warehouses loaded before leadferry applied loads itself, when no dataset has that
    name.
    """
    import duckdb

    schemas = [_identifier(dataset), *(_identifier(name) for name in leftovers)]
    url = settings.warehouse_postgres_url
    if url is not None:
        from leadferry.postgres import drop_schemas

        drop_schemas(url, schemas)
    elif settings.warehouse_path.exists():
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
