"""Runs in the store: starting one atomically per dataset, finishing, listing, and settling the
runs of processes that died: the warehouse says whether their load committed."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadferry.errors import BusyError, ConflictError, LeadferryError, NotFoundError
from leadferry.scrub import scrub
from leadferry.store.orm import DatasetRow, RunRow
from leadferry.store.queries import (
    busy_error,
    dataset_row,
    locked_is_busy,
    process_is_alive,
    to_run,
)
from leadferry.store.records import (
    FINAL_STATUSES,
    TRIGGERS,
    Run,
    require_aware,
)

if TYPE_CHECKING:
    from leadferry.apply import CommittedLoad

logger = logging.getLogger(__name__)

STALE_RUN_ERROR = "the process running it stopped"


class RunsMixin:
    """The runs of :class:`~leadferry.store.Store` (which provides the sessions)."""

    _read: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]
    _reader: sessionmaker[Session]
    _committed_load: Callable[[str, int, bool], CommittedLoad | None]
    """The load a run committed into its dataset, from the warehouse (None if none); with
    False as the last argument it does not wait for a busy warehouse (BusyError at once)."""
    _now: Callable[[], datetime]

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
        A running run whose process has died on this host is first settled: ``success`` if the
        warehouse has its load, else ``interrupted``.

        Raises:
            NotFoundError: no such dataset.
            BusyError: the dataset is already running, or the warehouse stayed busy while a
                dead run's load was looked up.
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

    def settle_dead_runs(self, now: datetime | None = None) -> list[Run]:
        """Settle the running runs whose process died on this host, as the warehouse tells;
        return them settled.

        Cheap when there are none (one query). A warehouse busy with a load (or unreadable)
        leaves a run to the next read. Every read of the store calls this first, so the history
        never shows a dead run as running, nor a committed load as interrupted; ``now`` stamps
        the end of the interrupted ones (default: the store's clock).
        """
        with locked_is_busy(), self._reader.begin() as session:
            running = session.execute(
                select(RunRow.id, RunRow.pid, RunRow.host, DatasetRow.name)
                .join(DatasetRow, RunRow.dataset_id == DatasetRow.id)
                .where(RunRow.status == "running")
                .order_by(RunRow.id)
            ).all()
        settled = []
        for run_id, pid, host, dataset in running:
            if process_is_alive(pid, host):
                continue
            try:
                committed = self._committed_load(dataset, run_id, False)
            except LeadferryError as exc:  # busy or unreadable: the next read tries again
                logger.info("dataset %s: run %d is left to settle later: %s", dataset, run_id, exc)
                continue
            with self._write() as session:
                run = session.get(RunRow, run_id)
                if run is not None and run.status == "running":
                    self._settle(session, run, dataset, committed, now or self._now())
                    settled.append(to_run(run, dataset))
        return settled

    def _live_run(self, session: Session, dataset: DatasetRow, now: datetime) -> RunRow | None:
        """The dataset's running run, after settling one whose process died."""
        running = session.scalars(
            select(RunRow).where(RunRow.dataset_id == dataset.id, RunRow.status == "running")
        ).first()
        if running is None or process_is_alive(running.pid, running.host):
            return running
        committed = self._committed_load(dataset.name, running.id, True)
        self._settle(session, running, dataset.name, committed, now)
        session.flush()  # before the new run's insert, for the one-running-run index
        return None

    @staticmethod
    def _settle(
        session: Session,
        run: RunRow,
        dataset: str,
        committed: CommittedLoad | None,
        now: datetime,
    ) -> None:
        """Finish a dead process's run: success with what it committed, else interrupted."""
        if committed is None:
            logger.warning(
                "dataset %s: run %d was left running by process %s, which stopped before its "
                "load committed: interrupted",
                dataset,
                run.id,
                run.pid,
            )
            run.status = "interrupted"
            run.finished_at = now
            run.error = STALE_RUN_ERROR
            return
        logger.warning(
            "dataset %s: run %d was left running by process %s, which stopped after its load "
            "%s committed: success",
            dataset,
            run.id,
            run.pid,
            committed.load_id,
        )
        run.status = "success"
        run.finished_at = committed.committed_at
        run.rows = dict(committed.rows)
        run.load_id = committed.load_id
        run.schema_changes = list(committed.schema_changes)
        run.error = None
        row = session.get(DatasetRow, run.dataset_id)
        newer = committed.cursor is not None and (
            row.cursor is None or committed.cursor > row.cursor
        )
        if row is not None and newer:
            row.cursor = committed.cursor


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
