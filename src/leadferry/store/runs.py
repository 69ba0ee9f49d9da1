"""Runs in the store: starting one atomically per dataset, finishing, listing, and marking the
runs of processes that died as interrupted."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from leadferry.errors import BusyError, ConflictError, NotFoundError
from leadferry.scrub import scrub
from leadferry.store.orm import DatasetRow, RunRow
from leadferry.store.queries import (
    busy_error,
    dataset_row,
    process_is_alive,
    to_run,
)
from leadferry.store.records import (
    FINAL_STATUSES,
    TRIGGERS,
    Run,
    require_aware,
)

logger = logging.getLogger(__name__)

STALE_RUN_ERROR = "the process running it stopped"


class RunsMixin:
    """The runs of :class:`~leadferry.store.Store` (which provides the sessions)."""

    _read: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]

    def start_run(
        self,
        dataset: str,
        trigger: str,
        window_start: datetime | None,
        window_end: datetime | None,
        now: datetime,
        *,
        slot: datetime | None = None,
        attempt: int = 0,
    ) -> Run:
        """Claim ``dataset`` for a run by this process: record a run in status ``running``.

        ``slot`` is the scheduled time a scheduled or retry run serves; ``attempt`` counts
        retries of that slot (0 for the first try).

        The check and the claim are one transaction holding the write lock, and a unique index
        forbids two running runs of a dataset, so of two processes racing exactly one wins.
        A running run whose process has died on this host is first marked ``interrupted``.

        Raises:
            NotFoundError: no such dataset.
            BusyError: the dataset is already running.
            ValueError: an unknown trigger or a naive datetime (bugs).
        """
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}: use one of {', '.join(TRIGGERS)}")
        require_aware(now, "now")
        require_aware(window_start, "window_start")
        require_aware(window_end, "window_end")
        with self._write() as session:
            row = dataset_row(session, dataset, lock=True)
            running = self._live_run(session, row, now)
            if running is not None:
                raise busy_error(dataset, running)
            run = RunRow(
                dataset_id=row.id,
                trigger=trigger,
                status="running",
                window_start=window_start,
                window_end=window_end,
                started_at=now,
                rows={},
                schema_changes=[],
                pid=os.getpid(),
                host=socket.gethostname(),
                slot=slot,
                attempt=attempt,
            )
            session.add(run)
            try:
                session.flush()
            except IntegrityError:
                raise BusyError(
                    f"dataset {dataset!r} is already running (claimed by another process)"
                ) from None
            logger.info("dataset %s: run %d started (%s)", dataset, run.id, trigger)
            return to_run(run, dataset)

    def finish_run(
        self,
        run_id: int,
        status: str,
        now: datetime,
        rows: dict[str, int] | None = None,
        error: str | None = None,
        load_id: str | None = None,
        schema_changes: list[str] | None = None,
    ) -> Run:
        """Record the result of a running run.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run has already finished.
            ValueError: a status other than success, failed or interrupted, or a naive ``now``.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(
                f"a run finishes as one of {', '.join(FINAL_STATUSES)}, not {status!r}"
            )
        require_aware(now, "now")
        with self._write() as session:
            run, dataset = _run_and_dataset(session, run_id)
            if run.status != "running":
                raise ConflictError(
                    f"run {run_id} of dataset {dataset!r} already ended ({run.status})"
                )
            run.status = status
            run.finished_at = now
            run.rows = {str(k): int(v) for k, v in (rows or {}).items()}
            run.error = None if error is None else scrub(error)
            run.load_id = load_id
            run.schema_changes = list(schema_changes or [])
            session.flush()
            logger.info("dataset %s: run %d %s", dataset, run_id, status)
            return to_run(run, dataset)

    def list_runs(self, dataset: str, limit: int | None = None) -> list[Run]:
        """The runs of ``dataset``, newest first.

        Raises:
            NotFoundError: no such dataset.
        """
        with self._read() as session:
            row = dataset_row(session, dataset)
            query = select(RunRow).where(RunRow.dataset_id == row.id).order_by(RunRow.id.desc())
            if limit is not None:
                query = query.limit(limit)
            return [to_run(run, dataset) for run in session.scalars(query)]

    def get_run(self, run_id: int) -> Run:
        """The run with id ``run_id``.

        Raises:
            NotFoundError: no such run.
        """
        with self._read() as session:
            run, dataset = _run_and_dataset(session, run_id)
            return to_run(run, dataset)

    def interrupt_stale_runs(self, now: datetime) -> list[Run]:
        """Mark as interrupted every running run whose process died on this host.

        ``start_run`` does this for its own dataset; a scheduler calls this when it starts, so
        the history stops showing runs that will never end.
        """
        require_aware(now, "now")
        with self._write() as session:
            found = session.execute(
                select(RunRow, DatasetRow)
                .join(DatasetRow, RunRow.dataset_id == DatasetRow.id)
                .where(RunRow.status == "running")
                .order_by(RunRow.id)
            ).all()
            return [
                to_run(run, dataset.name)
                for run, dataset in found
                if self._live_run(session, dataset, now) is None
            ]

    @staticmethod
    def _live_run(session: Session, dataset: DatasetRow, now: datetime) -> RunRow | None:
        """The dataset's running run, after marking one whose process died as interrupted."""
        running = session.scalars(
            select(RunRow).where(RunRow.dataset_id == dataset.id, RunRow.status == "running")
        ).first()
        if running is None or process_is_alive(running.pid, running.host):
            return running
        logger.warning(
            "dataset %s: run %d was left running by process %s, which stopped: interrupted",
            dataset.name,
            running.id,
            running.pid,
        )
        running.status = "interrupted"
        running.finished_at = now
        running.error = STALE_RUN_ERROR
        session.flush()  # before the new run's insert, for the one-running-run index
        return None


def _run_and_dataset(session: Session, run_id: int) -> tuple[RunRow, str]:
    """The run with id *run_id* and its dataset's name; NotFoundError when there is none."""
    found = session.execute(
        select(RunRow, DatasetRow.name)
        .join(DatasetRow, RunRow.dataset_id == DatasetRow.id)
        .where(RunRow.id == run_id)
    ).first()
    if found is None:
        raise NotFoundError(f"no run with id {run_id}")
    return found[0], found[1]
