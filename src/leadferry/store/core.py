"""The metadata store: accounts, datasets and their runs, behind one typed API.

Callers get frozen records (``Account``, ``Dataset``, ``Run``), never ORM objects or SQL.
Every transaction that writes takes the write lock first (``BEGIN IMMEDIATE`` on SQLite, a row
lock elsewhere), so that a check followed by a write cannot be overtaken by another process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadferry.errors import ConfigError, ConflictError, NotFoundError
from leadferry.settings import Settings
from leadferry.store.database import WRITE, create_store_engine, upgrade
from leadferry.store.keys import KeysMixin, open_secret_box
from leadferry.store.listing import ListingMixin
from leadferry.store.orm import AccountRow, DatasetRow, RunRow
from leadferry.store.queries import (
    account_row,
    busy_error,
    dataset_row,
    find_account,
    latest_runs,
    load_datasets,
    locked_is_busy,
    to_dataset,
)
from leadferry.store.records import (
    Account,
    AccountSummary,
    Dataset,
    DatasetSpec,
    check_account_name,
    check_dataset_fields,
    check_dataset_name,
    require_aware,
)
from leadferry.store.runs import RunsMixin
from leadferry.store.scheduling import SchedulingMixin
from leadferry.store.secrets import SecretBox, ensure_home, mask
from leadferry.store.users import UsersMixin

if TYPE_CHECKING:
    from leadferry.apply import CommittedLoad

logger = logging.getLogger(__name__)

_DATASET_FIELDS = frozenset(DatasetSpec.__dataclass_fields__) - {"name"}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store(RunsMixin, SchedulingMixin, UsersMixin, KeysMixin, ListingMixin):
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
        self._clock = clock or _utcnow
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

    # -- accounts ---------------------------------------------------------------------------

    def create_account(
        self, name: str, connector: str, config: dict[str, str], secrets: dict[str, str]
    ) -> Account:
        """Save a new account; its secrets are encrypted.

        Raises:
            ConfigError: an invalid name, or an unusable secret key.
            ConflictError: the name is taken.
        """
        check_account_name(name)
        if not connector:
            raise ConfigError("an account needs a connector")
        token = self._secret_box().encrypt(dict(secrets))
        now = self._now()
        with self._write() as session:
            if find_account(session, name) is not None:
                raise ConflictError(f"an account named {name!r} already exists")
            row = AccountRow(
                name=name,
                connector=connector,
                config=dict(config),
                secrets=token,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            self._flush_unique(session, f"an account named {name!r} already exists")
            logger.info("created account %s (%s)", name, connector)
            return self._account(row)

    def get_account(self, name: str) -> Account:
        """The account called ``name``, secrets decrypted.

        Raises:
            NotFoundError: no such account.
            ConfigError: its secrets cannot be decrypted with the current key.
        """
        with self._read() as session:
            return self._account(account_row(session, name))

    def list_accounts(self) -> list[AccountSummary]:
        """Every account by name, secrets masked, with how many datasets use it."""
        count = (
            select(func.count(DatasetRow.id))
            .where(DatasetRow.account_id == AccountRow.id)
            .scalar_subquery()
        )
        with self._read() as session:
            rows = session.execute(select(AccountRow, count).order_by(AccountRow.name)).all()
            summaries = []
            for row, dataset_count in rows:
                account = self._account(row)
                summaries.append(
                    AccountSummary(
                        name=row.name,
                        connector=row.connector,
                        config=dict(row.config),
                        masked={k: mask(v.get_secret_value()) for k, v in account.secrets.items()},
                        dataset_count=dataset_count,
                        created_at=row.created_at,
                        readable=account.unreadable is None,
                        tested_at=row.tested_at,
                        test_ok=row.test_ok,
                        test_message=row.test_message or "",
                    )
                )
            return summaries

    def record_account_test(self, name: str, ok: bool, message: str) -> None:
        """Remember how the connection test of account *name* went, now.

        Raises:
            NotFoundError: no account ``name``.
        """
        with self._write() as session:
            row = account_row(session, name)
            row.tested_at, row.test_ok, row.test_message = self._now(), ok, message

    def rename_account(self, name: str, new_name: str) -> Account:
        """Rename an account; its datasets follow.

        Raises:
            NotFoundError: no account ``name``.
            ConflictError: ``new_name`` is taken.
        """
        check_account_name(new_name)
        with self._write() as session:
            row = account_row(session, name)
            if new_name == name:
                return self._account(row)
            if find_account(session, new_name) is not None:
                raise ConflictError(f"an account named {new_name!r} already exists")
            row.name = new_name
            row.updated_at = self._now()
            self._flush_unique(session, f"an account named {new_name!r} already exists")
            logger.info("renamed account %s to %s", name, new_name)
            return self._account(row)

    def update_account(
        self,
        name: str,
        config: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> Account:
        """Set some config or secret fields of an account, keeping the others.

        Rotating a secret is setting it anew: the datasets of the account keep working. Secrets
        the current key cannot read are replaced by those given.

        Raises:
            NotFoundError: no such account.
            ConfigError: secrets given while the key file is missing (or the key invalid).
        """
        with self._write() as session:
            row = account_row(session, name)
            if config:
                row.config = {**row.config, **config}
            if secrets:
                box = self._secret_box()
                kept = {k: v.get_secret_value() for k, v in self._account(row).secrets.items()}
                row.secrets = box.encrypt({**kept, **secrets})
                logger.info("account %s: secrets %s replaced", name, ", ".join(sorted(secrets)))
            row.updated_at = self._now()
            session.flush()
            return self._account(row)

    def remove_account(self, name: str) -> None:
        """Delete an account that no dataset uses.

        Raises:
            NotFoundError: no such account.
            ConflictError: datasets use it (the message names them).
        """
        with self._write() as session:
            row = account_row(session, name)
            users = session.scalars(
                select(DatasetRow.name)
                .where(DatasetRow.account_id == row.id)
                .order_by(DatasetRow.name)
            ).all()
            if users:
                raise ConflictError(
                    f"account {name!r} is used by {_plural(len(users), 'dataset')} "
                    f"({', '.join(users)}): move them to another account or remove them first"
                )
            session.delete(row)
            logger.info("removed account %s", name)

    # -- datasets ---------------------------------------------------------------------------

    def create_dataset(self, spec: DatasetSpec) -> Dataset:
        """Save a new dataset.

        Raises:
            ConfigError: an invalid name, update method or time zone.
            NotFoundError: its account does not exist.
            ConflictError: the name is taken.
        """
        check_dataset_name(spec.name)
        check_dataset_fields(
            spec.update_method, spec.timezone, spec.params, spec.date_selection, spec.when_failing
        )
        now = self._now()
        with self._write() as session:
            if session.scalar(select(DatasetRow.id).where(DatasetRow.name == spec.name)):
                raise ConflictError(f"a dataset named {spec.name!r} already exists")
            account = account_row(session, spec.account)
            row = DatasetRow(
                name=spec.name,
                account_id=account.id,
                report=spec.report,
                params=dict(spec.params),
                date_selection=None if spec.date_selection is None else dict(spec.date_selection),
                timezone=spec.timezone,
                update_method=spec.update_method,
                merge_key=spec.merge_key,
                description=spec.description,
                owner=spec.owner,
                created_at=now,
                updated_at=now,
                schedule=None if spec.schedule is None else dict(spec.schedule),
                retry_every=spec.retry_every,
                retries=spec.retries,
                when_failing=spec.when_failing,
                stale_after=spec.stale_after,
                alert_webhook=spec.alert_webhook,
                alert_emails=list(spec.alert_emails),
                incremental=None if spec.incremental is None else dict(spec.incremental),
                retry_attempt=0,
                failing=False,
                alert_state={},
            )
            session.add(row)
            self._flush_unique(session, f"a dataset named {spec.name!r} already exists")
            logger.info("created dataset %s (%s %s)", spec.name, account.connector, spec.report)
            return to_dataset(row, account, None)

    def get_dataset(self, name: str) -> Dataset:
        """The dataset called ``name``, with its latest run.

        Raises:
            NotFoundError: no such dataset.
        """
        with self._read() as session:
            datasets = load_datasets(session, DatasetRow.name == name)
        if not datasets:
            raise NotFoundError(f"no dataset named {name!r}")
        return datasets[0]

    def list_datasets(self) -> list[Dataset]:
        """Every dataset by name, each with its latest run."""
        with self._read() as session:
            return load_datasets(session)

    def update_dataset(self, name: str, **changes: Any) -> Dataset:
        """Change some fields of a dataset (any ``DatasetSpec`` field but its name).

        ``account`` moves the dataset to another account of the same connector.

        Raises:
            NotFoundError: no such dataset, or no such account.
            ConfigError: an invalid value, or an account of another connector.
            TypeError: a field that does not exist (a bug).
        """
        unknown = set(changes) - _DATASET_FIELDS
        if unknown:
            raise TypeError(f"update_dataset() cannot change {', '.join(sorted(unknown))}")
        with self._write() as session:
            row = dataset_row(session, name)
            account = session.get_one(AccountRow, row.account_id)
            if "account" in changes and changes["account"] != account.name:
                new_account = account_row(session, changes["account"])
                if new_account.connector != account.connector:
                    raise ConfigError(
                        f"dataset {name!r} reads a {account.connector} report: move it to "
                        f"another {account.connector} account, not to {new_account.name!r} "
                        f"({new_account.connector})"
                    )
                row.account_id = new_account.id
                account = new_account
            fields = {k: v for k, v in changes.items() if k != "account"}
            check_dataset_fields(
                fields.get("update_method", row.update_method),
                fields.get("timezone", row.timezone),
                fields.get("params", row.params),
                fields.get("date_selection", row.date_selection),
                fields.get("when_failing", row.when_failing),
            )
            for key, value in fields.items():
                setattr(row, key, dict(value) if isinstance(value, dict) else value)
            row.updated_at = self._now()
            session.flush()
            latest = latest_runs(session, [row.id], {row.id: name})
            return to_dataset(row, account, latest.get(row.id))

    def remove_dataset(self, name: str) -> None:
        """Delete a dataset and its history (not its warehouse tables).

        Raises:
            NotFoundError: no such dataset.
            BusyError: it is running.
        """
        with self._write() as session:
            row = dataset_row(session, name)
            running = self._live_run(session, row, self._now())
            if running is not None:
                raise busy_error(name, running)
            session.execute(delete(RunRow).where(RunRow.dataset_id == row.id))
            session.delete(row)
            logger.info("removed dataset %s", name)

    # -- helpers ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        require_aware(now, "the store's clock")
        return now

    @contextmanager
    def _read(self) -> Iterator[Session]:
        self.settle_dead_runs()
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

    def _secret_box(self) -> SecretBox:
        with self._box_lock:
            if self._box is None:
                with self._read() as session:
                    self._box = open_secret_box(self._settings, session)
            return self._box

    def _account(self, row: AccountRow) -> Account:
        """The account of *row*; its secrets marked unreadable (with how to recover) when the
        key is wrong or missing, so that whatever needs no secret keeps working."""
        try:
            secrets = self._secret_box().decrypt(row.secrets, row.name)
            unreadable = None
        except ConfigError as exc:
            secrets, unreadable = {}, str(exc)
        return Account(
            id=row.id,
            name=row.name,
            connector=row.connector,
            config=dict(row.config),
            secrets={k: SecretStr(v) for k, v in secrets.items()},
            created_at=row.created_at,
            updated_at=row.updated_at,
            unreadable=unreadable,
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
