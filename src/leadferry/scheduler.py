"""The run service behind ``leadferry serve``: due slots, retries, alerts.

Each :meth:`Scheduler.tick` reads the clock once, asks the store which datasets are due, claims
each due slot or retry with a compare-and-set update (so two services sharing a store never take
the same one), and hands the run to an executor: a bounded thread pool in this process (so a
slow dataset never delays the others), or Celery workers on any number of machines
(``serve --executor celery``). Each tick first settles runs whose process died or whose worker's
lease lapsed: they are marked interrupted and their dataset's retry policy applies. However
many slots passed while the service was down, only the latest is run
(:func:`leadferry.schedule.due_slot`). Everything here takes its time from an injected clock.

After a failed scheduled run the dataset is retried every ``retry_every`` minutes up to
``retries`` times (trigger ``retry``, same slot and window). After the last failed retry it is
marked failing and an alert goes out; with ``when_failing="keep"`` (the default) its next slots
still run, with ``"pause"`` they wait until a run succeeds or ``leadferry datasets resume``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import httpx2

from leadferry import alerts
from leadferry.backfill import BackfillRequest, plan_backfill
from leadferry.clock import Clock, utc_now
from leadferry.dates import DateWindow
from leadferry.errors import BusyError
from leadferry.executors import Executor, ThreadExecutor
from leadferry.jobs import Heartbeat, Job, JobContext, after_failure, execute, send_alert
from leadferry.schedule import Schedule, due_slot, next_run
from leadferry.settings import Settings
from leadferry.store import Dataset, Store
from leadferry.store.runs import process_name
from leadferry.warehouse import keep_open_between_loads

logger = logging.getLogger(__name__)


MOST_CLAIMS_PER_TICK = 200
"""Slots and retries one tick claims at most, the longest-due first; the rest wait for the next
tick. After a long stop with thousands due, a tick stays short and nothing is sent to a queue
long before a worker can take it."""


def scaled_clock(origin: dt.datetime, speed: float, started: dt.datetime | None = None) -> Clock:
    """A clock that reads *origin* at real time *started* (default: now) and runs *speed* times
    faster than real time.

    For demos and end-to-end tests of schedules that would otherwise take hours; processes given
    the same *origin* and *started* tell the same time.
    """
    anchor = started or utc_now()

    def now() -> dt.datetime:
        return origin + (utc_now() - anchor) * speed

    return now


def schedule_of(dataset: Dataset) -> Schedule:
    return Schedule.parse(dataset.schedule)


def reschedule(store: Store, dataset: Dataset, now: dt.datetime) -> dt.datetime | None:
    """Recompute a dataset's next run after its schedule changed; return it."""
    upcoming = next_run(schedule_of(dataset), now) if dataset.schedule else None
    store.set_state(dataset.name, next_run_at=upcoming, last_slot=None, retry_at=None)
    return upcoming


def resume(store: Store, name: str, now: dt.datetime) -> dt.datetime | None:
    """Clear a dataset's failing mark and put it back on its schedule; return its next run."""
    dataset = store.get_dataset(name)
    upcoming = next_run(schedule_of(dataset), now) if dataset.schedule else None
    store.set_state(name, failing=False, retry_at=None, retry_attempt=0, next_run_at=upcoming)
    return upcoming


class Scheduler:
    """Claims due slots and retries, and hands them to an executor: by default a bounded pool
    of threads in this process, else Celery workers (:class:`~leadferry.executors.CeleryExecutor`).

    Every outgoing HTTP call (vendor pages, alert webhooks) goes through *client* when given
    (tests give one that reaches simulators in-process), otherwise through clients of its own.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        workers: int = 4,
        client: httpx2.Client | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.client = client
        self.worker = process_name()
        self.executor = executor or ThreadExecutor(workers, self._execute)
        self.alert_pool = ThreadPoolExecutor(1, thread_name_prefix="leadferry-alert")
        self.alerting: set[Future[None]] = set()
        self._lock = threading.Lock()

    # -- the loop -------------------------------------------------------------------------

    def serve(self, stop: threading.Event, tick_seconds: float = 1.0) -> None:
        """Tick until *stop* is set, then let running work finish.

        The DuckDB warehouse stays open between the runs' loads meanwhile
        (:func:`~leadferry.warehouse.keep_open_between_loads`).
        """
        with keep_open_between_loads(f"leadferry serve ({self.worker})"):
            try:
                with Heartbeat(self.store, self.settings, self.worker):
                    while not stop.is_set():
                        self.tick()
                        stop.wait(tick_seconds)
            finally:
                self.shutdown()

    def shutdown(self) -> None:
        """Let running work and pending alerts finish, then stop the workers."""
        self.executor.shutdown()
        self.alert_pool.shutdown(wait=True)

    def tick(self) -> list[Job]:
        """Settle runs whose worker died, then start every due slot and retry this service can
        claim; return what it started."""
        now = self.clock()
        self._settle_stopped_runs(now)
        cap = self.settings.account_concurrency
        running = self.store.running_per_account() if cap else {}
        started: list[Job] = []
        # Twice the share: some of the longest-due may be running, or their account at its cap.
        for dataset in self.store.due_datasets(now, limit=2 * MOST_CLAIMS_PER_TICK):
            if len(started) >= MOST_CLAIMS_PER_TICK:
                break
            busy = dataset.last_run is not None and dataset.last_run.status == "running"
            if busy or self.executor.queued(dataset.name):
                continue
            if cap and running.get(dataset.account, 0) >= cap:
                continue  # claimed when the account has room: nothing waits in a queue for it
            job = self._claim(dataset, now)
            if job is None:
                continue
            self.executor.submit(job)
            running[dataset.account] = running.get(dataset.account, 0) + 1
            started.append(job)
        self._check_stale(now)
        return started

    def run_now(self, name: str) -> Job:
        """Queue a manual run of dataset *name* on the workers (Run Now).

        A manual run that fails is recorded but neither retried nor marked failing: retries
        belong to schedules. One that succeeds clears a failing mark, as a fix should.

        Raises:
            NotFoundError: no such dataset.
            BusyError: it is already running, or queued here.
        """
        dataset = self.store.get_dataset(name)
        if dataset.last_run is not None and dataset.last_run.status == "running":
            raise BusyError(f"dataset {name} is already running")
        job = Job(name, "manual", None, 0)
        self.executor.submit(job)
        return job

    def backfill(self, name: str, days: BackfillRequest) -> list[DateWindow]:
        """Queue a backfill of dataset *name* on the workers (as ``leadferry backfill`` runs it,
        chunks already done skipped); return its chunks.

        Raises:
            ConfigError, InvalidWindowError, NotFoundError: the days cannot be backfilled (see
                :func:`~leadferry.backfill.plan_backfill`).
            BusyError: the dataset is already running, or queued here.
        """
        chunks = plan_backfill(
            self.store, name, days.first, days.last, days.chunk_days, now=self.clock()
        )
        dataset = self.store.get_dataset(name)
        if dataset.last_run is not None and dataset.last_run.status == "running":
            raise BusyError(f"dataset {name} is already running")
        self.executor.submit(Job(name, "backfill", None, 0, backfill=days))
        return chunks

    def cancel(self, name: str, who: str) -> str:
        """Stop dataset *name*: drop its job if it still waits here, else ask its running run
        to stop at its next page (a backfill stops with it). Return which: ``"dropped"`` or
        ``"asked"``.

        Raises:
            NotFoundError: no such dataset.
            ConflictError: it is neither queued here nor running.
        """
        if self.executor.cancel(name):
            logger.info("%s: %s dropped its queued job", name, who)
            return "dropped"
        self.store.request_cancel(name, who)
        return "asked"

    def queued(self, name: str) -> bool:
        """Whether a job of dataset *name* waits or runs on this service's executor."""
        return self.executor.queued(name)

    def wait(self) -> None:
        """Block until the runs and alerts started so far have finished."""
        self.executor.wait()
        with self._lock:
            pending = list(self.alerting)
        for future in pending:
            future.result()

    # -- claiming -------------------------------------------------------------------------

    def _claim(self, dataset: Dataset, now: dt.datetime) -> Job | None:
        state = dataset.state
        if state.retry_at is not None and state.retry_at <= now:
            won = self.store.claim(dataset.name, {"retry_at": state.retry_at}, {"retry_at": None})
            return Job(dataset.name, "retry", state.last_slot, state.retry_attempt) if won else None
        if not dataset.schedule or (state.failing and dataset.when_failing == "pause"):
            self.store.claim(
                dataset.name, {"next_run_at": state.next_run_at}, {"next_run_at": None}
            )
            return None
        schedule = schedule_of(dataset)
        # Never run since (re)scheduled: slots count from the first one it was given.
        since = state.next_run_at if state.last_slot is None else None
        slot = due_slot(schedule, state.last_slot, now, since=since)
        upcoming = next_run(schedule, now)
        if slot is None:
            self.store.claim(
                dataset.name, {"next_run_at": state.next_run_at}, {"next_run_at": upcoming}
            )
            return None
        won = self.store.claim(
            dataset.name,
            {"last_slot": state.last_slot},
            {"last_slot": slot, "next_run_at": upcoming, "retry_attempt": 0},
        )
        return Job(dataset.name, "scheduled", slot, 0) if won else None

    # -- running --------------------------------------------------------------------------

    def _context(self) -> JobContext:
        return JobContext(self.store, self.settings, self.worker, self.clock, self.client)

    def _execute(self, job: Job) -> None:
        execute(job, self._context())

    def _settle_stopped_runs(self, now: dt.datetime) -> None:
        """Settle the runs of processes that died or workers whose lease lapsed, and apply the
        retry policy to the interrupted ones (the process that would have done it is gone)."""
        for run in self.store.settle_dead_runs(now, leased=True):
            if run.status == "interrupted" and run.trigger != "manual":
                after_failure(self._context(), run.dataset, run.attempt)

    def _check_stale(self, now: dt.datetime) -> None:
        for dataset, last_success in self.store.stale_watched_datasets():
            alert = alerts.stale_alert(
                dataset.name,
                last_success,
                dataset.created_at,
                dt.timedelta(minutes=dataset.stale_after),
                now,
            )
            episode = (last_success or dataset.created_at).isoformat()
            if alert is None or dataset.state.alert_state.get("stale") == episode:
                continue
            if not self.store.claim_alert(dataset.name, "stale", episode):
                continue  # another node sent it
            future = self.alert_pool.submit(send_alert, self._context(), dataset, alert)
            with self._lock:
                self.alerting.add(future)
            future.add_done_callback(self._alert_sent)

    def _alert_sent(self, future: Future[None]) -> None:
        with self._lock:
            self.alerting.discard(future)
