"""Datasets in the store: what a user made of a report, each read with its latest run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from leadferry.errors import ConfigError, ConflictError, NotFoundError
from leadferry.store.orm import AccountRow, DatasetRow, RunRow
from leadferry.store.queries import (
    DATASET_COLUMNS,
    account_row,
    busy_error,
    dataset_row,
    load_datasets,
    to_column,
    to_dataset,
)
from leadferry.store.records import (
    DATASET_SPEC_FIELDS,
    Dataset,
    DatasetSpec,
    check_dataset_fields,
    check_dataset_name,
)

logger = logging.getLogger(__name__)

_CHANGEABLE = frozenset(DATASET_SPEC_FIELDS) - {"name"}


class DatasetsMixin:
    """The datasets of :class:`~leadferry.store.Store` (which provides the sessions, the clock
    and the runs)."""

    _read: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]
    _now: Callable[[], datetime]
    _flush_unique: Callable[[Session, str], None]
    _live_run: Callable[[Session, DatasetRow, datetime], RunRow | None]

    def create_dataset(self, spec: DatasetSpec) -> Dataset:
        """Save a new dataset.

        Raises:
            ConfigError: an invalid name, update method or time zone.
            NotFoundError: its account does not exist.
            ConflictError: the name is taken.
        """
        check_dataset_name(spec.name)
        check_dataset_fields(spec.update_method, spec.timezone, spec.params, spec.when_failing)
        now = self._now()
        with self._write() as session:
            if session.scalar(select(DatasetRow.id).where(DatasetRow.name == spec.name)):
                raise ConflictError(f"a dataset named {spec.name!r} already exists")
            account = account_row(session, spec.account)
            row = DatasetRow(
                **{name: to_column(name, getattr(spec, name)) for name in DATASET_COLUMNS},
                account_id=account.id,
                created_at=now,
                updated_at=now,
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
        unknown = set(changes) - _CHANGEABLE
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
                fields.get("when_failing", row.when_failing),
            )
            for key, value in fields.items():
                setattr(row, key, to_column(key, value))
            row.updated_at = self._now()
            session.flush()
            return load_datasets(session, DatasetRow.id == row.id)[0]

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
