"""One job of the run service, wherever it runs: run the dataset, then apply its retry policy
and send its alerts.

``leadferry serve``'s thread pool and Celery workers (``leadferry worker``) both call
:func:`execute`. A job names the dataset, the trigger, the slot it serves and the attempt, and
carries a key: the store records the key with the run and refuses it a second time, so a job a
queue delivers twice runs once. While a process runs jobs, a :class:`Heartbeat` renews the lease
of its runs in the store; a run whose lease lapses is interrupted and retried by the scheduler.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from typing import Any

import httpx2

from leadferry import alerts
from leadferry.backfill import BackfillRequest, run_backfill
from leadferry.clock import Clock, utc_now
from leadferry.connectors.base import FetchProgress
from leadferry.errors import (
    AccountBusyError,
    BusyError,
    ConflictError,
    LeadferryError,
    RunCancelledError,
)
from leadferry.run import run_dataset
from leadferry.settings import Settings
from leadferry.store import Dataset, Run, RunProgress, Store

logger = logging.getLogger(__name__)

NOT_RETRYING = {"retry_at": None, "retry_attempt": 0}
PROGRESS_EVERY = 1.0
"""Seconds between two writes of a running run's progress to the store (and so, at most, how
long a request to stop it waits for the run to see it, once a page arrives)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    dataset: str
    trigger: str
    slot: dt.datetime | None
    attempt: int
    key: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    backfill: BackfillRequest | None = None
    """A backfill job's days (trigger ``backfill``): one run per chunk."""

    def as_message(self) -> dict[str, Any]:
        """The job as JSON a queue carries."""
        message: dict[str, Any] = {
            "dataset": self.dataset,
            "trigger": self.trigger,
            "slot": None if self.slot is None else self.slot.isoformat(),
            "attempt": self.attempt,
            "key": self.key,
        }
        if self.backfill is not None:
            days = self.backfill
            message["backfill"] = [days.first.isoformat(), days.last.isoformat(), days.chunk_days]
        return message

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Job:
        slot = message.get("slot")
        days = message.get("backfill")
        return cls(
            dataset=str(message["dataset"]),
            trigger=str(message["trigger"]),
            slot=None if slot is None else dt.datetime.fromisoformat(slot),
            attempt=int(message["attempt"]),
            key=str(message["key"]),
            backfill=None
            if days is None
            else BackfillRequest(
                dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[1]), int(days[2])
            ),
        )


@dataclasses.dataclass(slots=True)
class JobContext:
    """What running jobs needs: the shared store and settings, a clock, the worker's name."""

    store: Store
    settings: Settings
    worker: str
    clock: Clock = utc_now
    client: httpx2.Client | None = None


def execute(job: Job, context: JobContext) -> Run | None:
    """Run *job*, then retry or alert as its dataset says; return its run, if it ran.

    A backfill job runs its chunks (see :func:`leadferry.backfill.run_backfill`) and, like a
    manual run, is neither retried nor alerted about. A run that someone stopped is not
    retried either.

    Raises:
        AccountBusyError: the account runs its most datasets at once; run the job later.
    """
    progress = ProgressRecorder(context.store, job.dataset)
    if job.backfill is not None:
        _backfill(job, job.backfill, context, progress)
        return None
    try:
        run = run_dataset(
            context.store,
            context.settings,
            job.dataset,
            clock=context.clock,
            trigger=job.trigger,
            client=context.client,
            progress=progress,
            as_of=job.slot,
            slot=job.slot,
            attempt=job.attempt,
            worker=context.worker,
            job_key=job.key,
        )
    except AccountBusyError:
        raise
    except BusyError as exc:
        logger.warning("%s: %s; slot %s skipped", job.dataset, exc, job.slot)
    except ConflictError as exc:  # its lease lapsed and serve settled it (and its retry) first
        logger.warning("%s: %s; its result is not recorded", job.dataset, exc)
    except RunCancelledError as exc:
        logger.warning("%s: %s run stopped: %s", job.dataset, job.trigger, exc)
    except LeadferryError as exc:
        logger.warning("%s: %s run failed: %s", job.dataset, job.trigger, exc)
        if job.trigger != "manual":
            after_failure(context, job.dataset, job.attempt)
    except Exception:
        logger.exception("%s: run crashed", job.dataset)
        if job.trigger != "manual":
            after_failure(context, job.dataset, job.attempt)
    else:
        after_success(context, job.dataset, run)
        return run
    return None


def _backfill(
    job: Job, days: BackfillRequest, context: JobContext, progress: ProgressRecorder
) -> None:
    try:
        result = run_backfill(
            context.store,
            context.settings,
            job.dataset,
            days.first,
            days.last,
            days.chunk_days,
            clock=context.clock,
            client=context.client,
            progress=progress,
        )
    except AccountBusyError:
        raise
    except LeadferryError as exc:  # its failed chunk is in the history, with this message
        logger.warning("%s: %s", job.dataset, exc)
    else:
        logger.info(
            "%s: backfilled %s .. %s (%d chunks done, %d skipped)",
            job.dataset,
            days.first,
            days.last,
            result.done,
            result.skipped,
        )


class ProgressRecorder:
    """Keeps how far a dataset's running run has got in the store, where every page and the
    API read it, and stops the run once someone asked (at its next page, the fetch raises
    :class:`~leadferry.errors.RunCancelledError`).

    The first page is written at once, the others at most every :data:`PROGRESS_EVERY`
    seconds (measured on a monotonic clock: this is a rate limit, not a time of day).
    """

    def __init__(self, store: Store, dataset: str, every: float = PROGRESS_EVERY) -> None:
        self._store = store
        self._dataset = dataset
        self._every = every
        self._written: float | None = None

    def __call__(self, state: FetchProgress) -> None:
        moment = time.monotonic()
        if self._written is not None and moment - self._written < self._every:
            return
        self._written = moment
        progress = RunProgress(state.pages_done, state.pages_total, state.rows)
        who = self._store.record_progress(self._dataset, progress)
        if who is not None:
            raise RunCancelledError(f"stopped by {who} at {progress.describe()}")


def after_failure(context: JobContext, name: str, attempt: int) -> None:
    """Retry a failed scheduled run, or mark its dataset failing and alert once."""
    store = context.store
    dataset = store.get_dataset(name)
    now = context.clock()
    if dataset.retry_every and attempt < dataset.retries:
        retry_at = now + dt.timedelta(minutes=dataset.retry_every)
        store.set_state(name, retry_at=retry_at, retry_attempt=attempt + 1)
        logger.info("%s: retry %d at %s", name, attempt + 1, retry_at)
        return
    # Only the node that turns the mark on sends the alert.
    if store.claim(name, {"failing": False}, {"failing": True, **NOT_RETRYING}):
        last = store.list_runs(name, limit=1)[0]
        send_alert(context, dataset, alerts.failing_alert(name, last, attempt + 1, now))
    else:
        store.set_state(name, **NOT_RETRYING)


def after_success(context: JobContext, name: str, run: Run) -> None:
    """Clear a failing mark (alerting that it recovered) and check for a zero-rows run."""
    store = context.store
    dataset = store.get_dataset(name)
    now = context.clock()
    if dataset.state.retry_attempt:
        store.set_state(name, **NOT_RETRYING)
    if dataset.state.failing and store.claim(
        name, {"failing": True}, {"failing": False, **NOT_RETRYING}
    ):
        send_alert(context, dataset, alerts.recovered_alert(name, run, now))
    if run.total_rows:  # the runs before matter only to a run of no rows (a store read less)
        return
    previous = store.list_runs(name, limit=alerts.ZERO_ROWS_LOOKBACK + 1)
    zero = alerts.zero_rows_alert(name, run, previous, now)
    if zero is not None:
        send_alert(context, dataset, zero)


def send_alert(context: JobContext, dataset: Dataset, alert: alerts.Alert) -> None:
    """Deliver *alert* to the dataset's targets, through the context's HTTP client if it has one
    (tests reach their webhook receivers in-process)."""
    targets = alerts.AlertTargets.from_settings(
        context.settings, webhook=dataset.alert_webhook, emails=dataset.alert_emails or None
    )
    logger.warning("%s: %s", dataset.name, alert.message)
    if targets:
        for problem in alerts.deliver(alert, targets, context.settings, context.client):
            logger.warning("%s: alert not delivered: %s", dataset.name, problem)


class Heartbeat:
    """Renews the lease of a worker's runs every quarter of ``settings.run_lease``."""

    def __init__(self, store: Store, settings: Settings, worker: str) -> None:
        self._store = store
        self._worker = worker
        self._every = settings.run_lease / 4
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="leadferry-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._store.heartbeat(self._worker)
            except Exception:  # a store that is briefly unreachable: beat again next time
                logger.exception("heartbeat of %s failed", self._worker)
