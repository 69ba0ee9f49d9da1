"""Runs in the store: starting one atomically per dataset, finishing, listing, and settling the
runs of processes that died: the warehouse says whether their load committed."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadferry.clock import utc_now
from leadferry.errors import (
    AccountBusyError,
    BusyError,
    ConflictError,
    DuplicateJobError,
    LeadferryError,
    NotFoundError,
)
from leadferry.scrub import scrub
from leadferry.settings import Settings
from leadferry.store.orm import AccountRow, DatasetRow, RunRow
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
    RunProgress,
    require_aware,
)

if TYPE_CHECKING:
    from sqlalchemy import Row

    from leadferry.apply import CommittedLoad

logger = logging.getLogger(__name__)

_RUNNING = (
    select(
        RunRow.id, RunRow.pid, RunRow.host, RunRow.heartbeat_at, DatasetRow.name.label("dataset")
    )
    .join(DatasetRow, RunRow.dataset_id == DatasetRow.id)
    .where(RunRow.status == "running")
    .order_by(RunRow.id)
)
"""The running runs, as much as :meth:`RunsMixin._alive` needs: built once, since every read
of the store runs it first (:meth:`RunsMixin._stopped_runs`)."""

STALE_RUN_ERROR = "the process running it stopped"
LEASE_EXPIRED_ERROR = "the worker running it stopped answering (its lease expired)"


def process_name() -> str:
    """This process as the history names a worker: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class RunsMixin:
    """The runs of :class:`~leadferry.store.Store` (which provides the sessions)."""

    _read: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]
    _reader: sessionmaker[Session]
    _committed_load: Callable[[str, int, bool], CommittedLoad | None]
    """The load a run committed into its dataset, from the warehouse (None if none); with
    False as the last argument it does not wait for a busy warehouse (BusyError at once)."""
    _now: Callable[[], datetime]
    _settings: Settings

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
        worker: str | None = None,
        job_key: str | None = None,
    ) -> Run:
        """Claim ``dataset`` for a run by this process: record a run in status ``running``.

        ``slot`` is the scheduled time a scheduled or retry run serves; ``attempt`` counts
        retries of that slot (0 for the first try). A ``worker`` (its name) heartbeats its runs
        (:meth:`heartbeat`): the run holds a lease of ``settings.run_lease`` seconds; without
        one the run is recorded as this process's (host:pid) and has no lease. ``job_key``
        names the queued job the run serves; a job runs at most once.

        The check and the claim are one transaction holding the write lock, and a unique index
        forbids two running runs of a dataset, so of two processes racing exactly one wins.
        A running run whose process has died on this host, or whose lease expired, is first
        settled: ``success`` if the warehouse has its load, else ``interrupted``. With
        ``settings.account_concurrency`` set, the account's row is locked too and the claim
        refused while the account has that many runs.

        Raises:
            NotFoundError: no such dataset.
            BusyError: the dataset is already running, or the warehouse stayed busy while a
                dead run's load was looked up.
            AccountBusyError: the account runs as many datasets as it may.
            DuplicateJobError: ``job_key`` already has a run.
            ValueError: an unknown trigger or a naive datetime (bugs).
        """
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}: use one of {', '.join(TRIGGERS)}")
        require_aware(now, "now")
        require_aware(window_start, "window_start")
        require_aware(window_end, "window_end")
        with self._write() as session:
            row = dataset_row(session, dataset, lock=True)
            if job_key is not None:
                _refuse_duplicate(session, dataset, job_key)
            running = self._live_run(session, row, now)
            if running is not None:
                raise busy_error(dataset, running)
            self._check_account_cap(session, row)
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
                worker=worker or process_name(),
                # Heartbeats and leases are real time, never a test's scaled store clock.
                heartbeat_at=None if worker is None else utc_now(),
                job_key=job_key,
            )
            session.add(run)
            try:
                session.flush()
            except IntegrityError:  # a racing claim of the dataset, or of the same job
                raise BusyError(
                    f"dataset {dataset!r} is already running (claimed by another process)"
                ) from None
            _summarise(row, run)
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
        table_rows: int | None = None,
    ) -> Run:
        """Record the result of a running run; a successful one's *table_rows* (its dataset's
        main table's rows after its load; None: not known) are kept on the dataset.

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
            _summarise(session.get_one(DatasetRow, run.dataset_id), run, table_rows)
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

    def record_progress(self, dataset: str, progress: RunProgress) -> str | None:
        """Keep how far the running run of *dataset* has got; return who asked it to stop
        (None: it goes on). Without a running run, nothing is kept.

        Raises:
            NotFoundError: no such dataset.
        """
        with self._write() as session:
            run = _running_run(session, dataset_row(session, dataset))
            if run is None:
                return None
            run.progress = progress.as_json()
            return run.cancel_requested

    def request_cancel(self, dataset: str, who: str) -> Run:
        """Ask the running run of *dataset* to stop (it stops at its next page); return it.

        Raises:
            NotFoundError: no such dataset.
            ConflictError: it is not running.
        """
        with self._write() as session:
            run = _running_run(session, dataset_row(session, dataset))
            if run is None:
                raise ConflictError(f"dataset {dataset} is not running: there is nothing to stop")
            run.cancel_requested = who
            session.flush()
            logger.info("dataset %s: %s asked run %d to stop", dataset, who, run.id)
            return to_run(run, dataset)

    def heartbeat(self, worker: str) -> int:
        """Renew the lease of every run *worker* is running; return how many it holds."""
        with self._write() as session:
            result = session.execute(
                update(RunRow)
                .where(RunRow.worker == worker, RunRow.status == "running")
                .values(heartbeat_at=utc_now())
            )
            return int(result.rowcount)

    def running_per_account(self) -> dict[str, int]:
        """How many runs each account has running now (accounts with none are left out)."""
        with self._read() as session:
            found = session.execute(
                select(AccountRow.name, func.count(RunRow.id))
                .join(DatasetRow, DatasetRow.account_id == AccountRow.id)
                .join(RunRow, RunRow.dataset_id == DatasetRow.id)
                .where(RunRow.status == "running")
                .group_by(AccountRow.name)
            ).all()
            return {name: int(count) for name, count in found}

    def settle_dead_runs(self, now: datetime | None = None, *, leased: bool = False) -> list[Run]:
        """Settle the running runs whose process died on this host, as the warehouse tells;
        return them settled. With *leased*, also the runs of workers (runs with a lease) whose
        process died or whose lease expired: a scheduler settles those on its ticks, as it also
        applies their retry policy.

        Cheap when there are none (one query). A warehouse busy with a load (or unreadable)
        leaves a run to the next read. Every read that shows runs looks for them first (in its
        own transaction) and settles them, and a scheduler calls this on every tick, so the
        history never shows a dead run as running, nor a committed load as interrupted; ``now``
        stamps the end of the interrupted ones (default: the store's clock).
        """
        with locked_is_busy(), self._reader.begin() as session:
            stopped = self._stopped_runs(session, leased=leased)
        return self._settle_stopped(stopped, now)

    def _stopped_runs(self, session: Session, *, leased: bool = False) -> list[tuple[int, str]]:
        """The running runs (id, dataset) whose process died on this host; with *leased*, also
        the runs of workers whose process died or whose lease expired."""
        return [
            (run.id, run.dataset)
            for run in session.connection().execute(_RUNNING).all()
            if (leased or run.heartbeat_at is None) and not self._alive(run)
        ]

    def _settle_stopped(self, stopped: list[tuple[int, str]], now: datetime | None) -> list[Run]:
        """Settle each of the *stopped* runs that is still running once its write begins."""
        settled = []
        for run_id, dataset in stopped:
            try:
                committed = self._committed_load(dataset, run_id, False)
            except LeadferryError as exc:  # busy or unreadable: the next read tries again
                logger.info("dataset %s: run %d is left to settle later: %s", dataset, run_id, exc)
                continue
            with self._write() as session:
                run = session.get(RunRow, run_id)
                if run is not None and run.status == "running" and not self._alive(run):
                    self._settle(session, run, dataset, committed, now or self._now())
                    settled.append(to_run(run, dataset))
        return settled

    def _live_run(self, session: Session, dataset: DatasetRow, now: datetime) -> RunRow | None:
        """The dataset's running run, after settling one whose process died (or whose lease
        expired)."""
        running = _running_run(session, dataset)
        if running is None or self._alive(running):
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
        who = run.worker or f"process {run.pid}"
        if committed is None:
            # A process seen gone on this host is the surer reason; else only its silence tells.
            gone = not process_is_alive(run.pid, run.host)
            logger.warning(
                "dataset %s: run %d was left running by %s, which stopped before its load "
                "committed: interrupted",
                dataset,
                run.id,
                who,
            )
            run.status = "interrupted"
            run.finished_at = now
            run.error = STALE_RUN_ERROR if gone else LEASE_EXPIRED_ERROR
            _summarise(session.get_one(DatasetRow, run.dataset_id), run)
            return
        logger.warning(
            "dataset %s: run %d was left running by %s, which stopped after its load "
            "%s committed: success",
            dataset,
            run.id,
            who,
            committed.load_id,
        )
        run.status = "success"
        run.finished_at = committed.committed_at
        run.rows = dict(committed.rows)
        run.load_id = committed.load_id
        run.schema_changes = list(committed.schema_changes)
        run.error = None
        row = session.get_one(DatasetRow, run.dataset_id)
        if committed.cursor is not None and (row.cursor is None or committed.cursor > row.cursor):
            row.cursor = committed.cursor
        _summarise(row, run)  # its table's rows are counted again by the Data Center

    def _lease_expired(self, run: RunRow | Row[Any]) -> bool:
        lease = timedelta(seconds=self._settings.run_lease)  # in real time, as heartbeats
        return run.heartbeat_at is not None and run.heartbeat_at < utc_now() - lease

    def _alive(self, run: RunRow | Row[Any]) -> bool:
        """Whether the run's process may still run it: its lease holds and, on this host, the
        process exists."""
        return not self._lease_expired(run) and process_is_alive(run.pid, run.host)

    def _check_account_cap(self, session: Session, dataset: DatasetRow) -> None:
        cap = self._settings.account_concurrency
        if not cap:
            return
        # The account's row lock serialises claims on one account across every node.
        account = session.scalars(
            select(AccountRow).where(AccountRow.id == dataset.account_id).with_for_update()
        ).one()
        running = session.scalar(
            select(func.count(RunRow.id))
            .join(DatasetRow, RunRow.dataset_id == DatasetRow.id)
            .where(DatasetRow.account_id == account.id, RunRow.status == "running")
        )
        if running and running >= cap:
            raise AccountBusyError(
                f"account {account.name!r} already runs {running} datasets, its most at once "
                f"(LEADFERRY_ACCOUNT_CONCURRENCY={cap}); dataset {dataset.name!r} waits"
            )


def _summarise(dataset: DatasetRow, run: RunRow, table_rows: int | None = None) -> None:
    """Keep on the dataset's row what the Data Center judges it by, in the transaction that
    starts or ends *run* (its latest run): the run's status and end, the last success, and
    after a success its main table's *table_rows* (None: not known, counted later)."""
    dataset.last_run_id = run.id
    dataset.last_run_status = run.status
    dataset.last_run_finished_at = run.finished_at
    if run.status == "success" and run.finished_at is not None:
        before = dataset.last_success_at
        latest = run.finished_at if before is None else max(before, run.finished_at)
        dataset.last_success_at = latest
        dataset.table_rows = table_rows


def _running_run(session: Session, dataset: DatasetRow) -> RunRow | None:
    return session.scalars(
        select(RunRow).where(RunRow.dataset_id == dataset.id, RunRow.status == "running")
    ).first()


def _refuse_duplicate(session: Session, dataset: str, job_key: str) -> None:
    earlier = session.scalars(select(RunRow.id).where(RunRow.job_key == job_key)).first()
    if earlier is not None:
        raise DuplicateJobError(
            f"dataset {dataset!r}: job {job_key} already ran as run {earlier}; duplicate dropped"
        )


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
