"""Queries and conversions behind ``Store``: rows in, frozen records out."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from leadferry.errors import BusyError, NotFoundError
from leadferry.store.orm import AccountRow, DatasetRow, RunRow
from leadferry.store.records import Dataset, Run, RunProgress, ScheduleState


def find_account(session: Session, name: str) -> AccountRow | None:
    return session.scalars(select(AccountRow).where(AccountRow.name == name)).first()


def account_row(session: Session, name: str) -> AccountRow:
    row = find_account(session, name)
    if row is None:
        raise NotFoundError(f"no account named {name!r}")
    return row


def dataset_row(session: Session, name: str, *, lock: bool = False) -> DatasetRow:
    query = select(DatasetRow).where(DatasetRow.name == name)
    if lock:
        # A row lock on PostgreSQL; on SQLite nothing is rendered: BEGIN IMMEDIATE already locks.
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no dataset named {name!r}")
    return row


def load_datasets(
    session: Session, *where: Any, order_by: Any = None, limit: int | None = None
) -> list[Dataset]:
    """Datasets with their account and latest run, in two queries whatever their number; by
    name unless *order_by* says otherwise, the first *limit* of them if given."""
    query = (
        select(DatasetRow, AccountRow)
        .join(AccountRow, DatasetRow.account_id == AccountRow.id)
        .where(*where)
        .order_by(*([] if order_by is None else [order_by]), DatasetRow.name)
    )
    found = session.execute(query if limit is None else query.limit(limit)).all()
    names = {dataset.id: dataset.name for dataset, _ in found}
    latest = latest_runs(session, list(names), names)
    return [to_dataset(dataset, account, latest.get(dataset.id)) for dataset, account in found]


def latest_runs(session: Session, ids: list[int], names: dict[int, str]) -> dict[int, Run]:
    if not ids:
        return {}
    newest = (
        select(func.max(RunRow.id)).where(RunRow.dataset_id.in_(ids)).group_by(RunRow.dataset_id)
    )
    runs = session.scalars(select(RunRow).where(RunRow.id.in_(newest)))
    return {run.dataset_id: to_run(run, names[run.dataset_id]) for run in runs}


def to_dataset(row: DatasetRow, account: AccountRow, last_run: Run | None) -> Dataset:
    return Dataset(
        id=row.id,
        name=row.name,
        account=account.name,
        connector=account.connector,
        report=row.report,
        params=dict(row.params),
        date_selection=None if row.date_selection is None else dict(row.date_selection),
        timezone=row.timezone,
        update_method=row.update_method,
        merge_key=row.merge_key,
        description=row.description,
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_run=last_run,
        schedule=None if row.schedule is None else dict(row.schedule),
        retry_every=row.retry_every,
        retries=row.retries,
        when_failing=row.when_failing,
        stale_after=row.stale_after,
        alert_webhook=row.alert_webhook,
        alert_emails=list(row.alert_emails),
        incremental=None if row.incremental is None else dict(row.incremental),
        state=ScheduleState(
            next_run_at=row.next_run_at,
            last_slot=row.last_slot,
            retry_at=row.retry_at,
            retry_attempt=row.retry_attempt,
            failing=row.failing,
            alert_state=dict(row.alert_state),
            cursor=row.cursor,
        ),
    )


def to_run(row: RunRow, dataset: str) -> Run:
    return Run(
        id=row.id,
        dataset=dataset,
        trigger=row.trigger,
        status=row.status,
        window_start=row.window_start,
        window_end=row.window_end,
        started_at=row.started_at,
        finished_at=row.finished_at,
        rows=dict(row.rows),
        error=row.error,
        load_id=row.load_id,
        schema_changes=list(row.schema_changes),
        pid=row.pid,
        host=row.host,
        slot=row.slot,
        attempt=row.attempt,
        worker=row.worker,
        job_key=row.job_key,
        progress=RunProgress.of(row.progress),
        cancel_requested=row.cancel_requested,
    )


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
