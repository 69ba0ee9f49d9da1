"""The metadata store: accounts, datasets, runs and users, behind one typed API.

:class:`Store` opens the database and holds the sessions, the clock and the key; each entity's
methods live in a module of their own (``accounts.py``, ``datasets.py``, ``runs.py``,
``scheduling.py``, ``users.py``, ``keys.py``, ``listing.py``), mixed in here. Callers get frozen
records (``Account``, ``Dataset``, ``Run``), never ORM objects or SQL.
Every transaction that writes takes the write lock first (``BEGIN IMMEDIATE`` on SQLite, a row
lock elsewhere), so that a check followed by a write cannot be overtaken by another process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadferry.clock import utc_now
from leadferry.errors import ConflictError
from leadferry.settings import Settings
from leadferry.store.accounts import AccountsMixin
from leadferry.store.database import WRITE, create_store_engine, upgrade
from leadferry.store.datasets import DatasetsMixin
from leadferry.store.keys import KeysMixin
from leadferry.store.listing import ListingMixin
from leadferry.store.queries import locked_is_busy
from leadferry.store.records import require_aware
from leadferry.store.runs import RunsMixin
from leadferry.store.scheduling import SchedulingMixin
from leadferry.store.secrets import SecretBox, ensure_home
from leadferry.store.users import UsersMixin

if TYPE_CHECKING:
    from leadferry.apply import CommittedLoad

logger = logging.getLogger(__name__)


class Store(
    AccountsMixin,
    DatasetsMixin,
    RunsMixin,
    SchedulingMixin,
    UsersMixin,
    KeysMixin,
    ListingMixin,
):
    """Accounts, datasets, runs and users, kept in a SQL database (SQLite by default).

    Safe to share between threads; several processes may open the same database.
    Use ``Store.open(settings)``, and close it (or use it as a context manager).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock or utc_now
        self._reader = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(
            engine.execution_options(**{WRITE: True}), expire_on_commit=False
        )
        self._box: SecretBox | None = None
        self._box_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        url: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Store:
        """Open the store of ``settings``: create the home folder, upgrade the schema to head.

        ``url`` replaces ``settings.metadata_url`` (a PostgreSQL database, say); ``clock`` gives
        the time stamped on accounts and datasets (default: the system clock).

        Raises:
            ConfigError: the database was made by a newer leadferry.
            BusyError: another process holds the database's lock for too long.
        """
        ensure_home(settings.home)
        engine = create_store_engine(url or settings.metadata_url)
        try:
            with locked_is_busy():
                upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, settings, clock)

    def close(self) -> None:
        """Close every connection to the database."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- helpers ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        require_aware(now, "the store's clock")
        return now

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A read that shows runs: a run whose process died is settled first. Most reads find
        none, and look for them in their own transaction (a query, not a transaction more)."""
        with self._lookup() as session:
            stopped = self._stopped_runs(session)
            if not stopped:
                yield session
                return
        self._settle_stopped(stopped, None)
        with self._lookup() as session:
            yield session

    @contextmanager
    def _lookup(self) -> Iterator[Session]:
        """A read that shows no run (users, tokens, sessions, an account's settings): no dead
        run to settle first."""
        with locked_is_busy(), self._reader.begin() as session:
            yield session

    def _committed_load(self, dataset: str, run_id: int, wait: bool) -> CommittedLoad | None:
        from leadferry.warehouse import open_warehouse

        timeout = self._settings.lock_timeout if wait else 0.0
        return open_warehouse(self._settings, timeout).committed_load(dataset, run_id)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with locked_is_busy(), self._writer.begin() as session:
            yield session

    @staticmethod
    def _flush_unique(session: Session, message: str) -> None:
        # The checks before inserting give the friendly message; this catches what races past.
        try:
            session.flush()
        except IntegrityError:
            raise ConflictError(message) from None
