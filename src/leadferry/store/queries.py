"""Queries and conversions behind ``Store``: rows in, frozen records out."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import JSON, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from leadferry.dates import DateSelection
from leadferry.errors import BusyError, InvalidWindowError, NotFoundError, StorageError
from leadferry.store.orm import AccountRow, Base, DatasetRow, RunRow, UserRow
from leadferry.store.records import (
    DATASET_SPEC_FIELDS,
    RUN_FIELDS,
    SCHEDULE_STATE_FIELDS,
    Dataset,
    Run,
    RunProgress,
    ScheduleState,
)

DATASET_COLUMNS = tuple(name for name in DATASET_SPEC_FIELDS if name != "account")
"""The fields of a dataset's spec kept in columns of the same name (its account is an id)."""

_Named = TypeVar("_Named", AccountRow, DatasetRow, UserRow)


def find_named(session: Session, model: type[_Named], name: str) -> _Named | None:
    """The row of *model* called *name*, or None."""
    return session.scalars(select(model).where(model.name == name)).first()


def named_row(
    session: Session, model: type[_Named], name: str, what: str, *, lock: bool = False
) -> _Named:
    """The row of *model* called *name*; with *lock*, locked for the transaction (a row lock
    on PostgreSQL; on SQLite nothing is rendered: BEGIN IMMEDIATE already locks).

    Raises:
        NotFoundError: none (``no <what> named ...``).
    """
    query = select(model).where(model.name == name)
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError(f"no {what} named {name!r}")
    return row


def find_account(session: Session, name: str) -> AccountRow | None:
    return find_named(session, AccountRow, name)


def account_row(session: Session, name: str) -> AccountRow:
    return named_row(session, AccountRow, name, "account")


def dataset_row(session: Session, name: str, *, lock: bool = False) -> DatasetRow:
    return named_row(session, DatasetRow, name, "dataset", lock=lock)


_DATASETS = DatasetRow.__table__
_ACCOUNTS = AccountRow.__table__
_RUNS = RunRow.__table__
_RUN_COLUMNS = tuple(name for name in RUN_FIELDS if name != "dataset")
_RUN_LABELS = {name: f"run_{name}" for name in _RUN_COLUMNS}
DATASETS_WITH_LATEST_RUN = (
    select(
        _DATASETS,
        _ACCOUNTS.c.name.label("account"),
        _ACCOUNTS.c.connector,
        *(_RUNS.c[name].label(label) for name, label in _RUN_LABELS.items()),
    )
    .join(_ACCOUNTS, _DATASETS.c.account_id == _ACCOUNTS.c.id)
    .outerjoin(_RUNS, _RUNS.c.id == _DATASETS.c.last_run_id)
)
"""Datasets with their account's name and connector and their latest run (by the id their
rows keep), as plain rows: a Core read, each row made a record by :func:`dataset_of`."""


def load_datasets(
    session: Session, *where: Any, order_by: Any = None, limit: int | None = None
) -> list[Dataset]:
    """Datasets with their account and latest run, in one query whatever their number; by
    name unless *order_by* says otherwise, the first *limit* of them if given."""
    query = DATASETS_WITH_LATEST_RUN.where(*where).order_by(
        *([] if order_by is None else [order_by]), _DATASETS.c.name
    )
    found = session.connection().execute(query if limit is None else query.limit(limit)).all()
    return [dataset_of(row) for row in found]


_AT = {column.key: i for i, column in enumerate(DATASETS_WITH_LATEST_RUN.selected_columns)}
"""Where each column is in a row of :data:`DATASETS_WITH_LATEST_RUN`: rows are read by
position, much cheaper than by name."""
_SPEC_AT = tuple((name, _AT[name]) for name in DATASET_COLUMNS)
_STATE_AT = tuple((name, _AT[name]) for name in SCHEDULE_STATE_FIELDS)
_RUN_AT = tuple((name, _AT[label]) for name, label in _RUN_LABELS.items())
_RECORD_AT = tuple(
    (name, _AT[name])
    for name in ("id", "account", "connector", "created_at", "updated_at", "table_rows")
)


def dataset_of(row: Any) -> Dataset:
    """The record of a row of :data:`DATASETS_WITH_LATEST_RUN` (its values are its own: a
    Core row's JSON is parsed afresh for each read)."""
    spec = {name: row[at] for name, at in _SPEC_AT}
    spec["date_selection"] = stored_date_selection(spec["name"], spec["date_selection"])
    last_run = None
    if row[_AT["run_id"]] is not None:
        values = {name: row[at] for name, at in _RUN_AT}
        values["progress"] = RunProgress.of(values["progress"])
        last_run = Run(dataset=spec["name"], **values)
    return Dataset(
        **spec,
        **{name: row[at] for name, at in _RECORD_AT},
        last_run=last_run,
        state=ScheduleState(**{name: row[at] for name, at in _STATE_AT}),
    )


def detached(value: Any) -> Any:
    """A copy of a JSON column's mapping or list, so a record and a row never share one."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


def _json_columns(model: type[Base]) -> frozenset[str]:
    return frozenset(c.key for c in model.__table__.columns if isinstance(c.type, JSON))


_JSON_COLUMNS = _json_columns(DatasetRow) | _json_columns(RunRow)
"""The columns whose values a record must copy (the others are immutable)."""


def _value(row: Any, name: str) -> Any:
    """The column *name* of *row*, copied if it is a JSON one (:func:`detached`)."""
    value = getattr(row, name)
    return detached(value) if name in _JSON_COLUMNS else value


def _values(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: _value(row, name) for name in names}


def to_column(field: str, value: Any) -> Any:
    """What a dataset's *field* is kept as in its column: a date selection as its JSON."""
    if field == "date_selection":
        return value.as_json()
    return detached(value)


def from_column(row: DatasetRow, field: str) -> Any:
    """A dataset's *field* from its column, typed as ``DatasetSpec`` has it.

    Raises:
        StorageError: the stored date selection is not a valid one.
    """
    if field != "date_selection":
        return _value(row, field)
    return stored_date_selection(row.name, row.date_selection)


def stored_date_selection(dataset: str, value: Any) -> DateSelection:
    """The date selection stored for *dataset* as its JSON, typed.

    Raises:
        StorageError: the stored value is not a valid date selection.
    """
    try:
        if value is not None and not isinstance(value, dict):
            raise InvalidWindowError(f"a mapping was expected, not {type(value).__name__}")
        fields = tuple((value or {}).items())
        try:
            return _parsed_selection(fields)
        except TypeError:  # a value that is not hashable (a list): not a valid one anyway
            return DateSelection.parse(value)
    except InvalidWindowError as exc:
        raise StorageError(
            f"dataset {dataset!r} has an invalid date selection in the store ({exc}): "
            "the store was changed outside leadferry; restore it from a backup"
        ) from None


@lru_cache(maxsize=1024)
def _parsed_selection(fields: tuple[tuple[str, Any], ...]) -> DateSelection:
    """A stored selection's fields, typed once for each distinct selection (selections are
    immutable): a page of the Data Center reads fifty, most of them alike."""
    return DateSelection.parse(dict(fields))


def to_dataset(row: DatasetRow, account: AccountRow, last_run: Run | None) -> Dataset:
    return Dataset(
        **{name: from_column(row, name) for name in DATASET_COLUMNS},
        id=row.id,
        account=account.name,
        connector=account.connector,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_run=last_run,
        state=ScheduleState(**_values(row, SCHEDULE_STATE_FIELDS)),
        table_rows=row.table_rows,
    )


def to_run(row: RunRow, dataset: str) -> Run:
    columns = _values(row, _RUN_COLUMNS)
    return Run(dataset=dataset, **columns | {"progress": RunProgress.of(row.progress)})


def busy_error(dataset: str, run: RunRow) -> BusyError:
    where = f" by process {run.pid} on {run.host}" if run.pid is not None else ""
    return BusyError(
        f"dataset {dataset!r} is already running "
        f"(run {run.id}, started {run.started_at:%Y-%m-%d %H:%M:%S} UTC{where})"
    )


def process_is_alive(pid: int | None, host: str | None) -> bool:
    """Whether the process that claimed a run may still run it.

    Only a process on this host can be checked; one elsewhere (or unknown) is presumed alive.
    """
    if pid is None or host != socket.gethostname():
        return True
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@contextmanager
def locked_is_busy() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if "database is locked" in str(exc.orig):
            raise BusyError(
                "the metadata store is locked by another leadferry process; try again"
            ) from None
        raise
