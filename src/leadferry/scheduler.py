"""The run service behind ``leadferry serve``: due slots, retries, alerts.

Each :meth:`Scheduler.tick` reads the clock once, asks the store which datasets are due, claims
each due slot or retry with a compare-and-set update (so two services sharing a store never take
the same one), and hands the run to a bounded thread pool, so a slow dataset never delays the
others. However many slots passed while the service was down, only the latest is run
(:func:`leadferry.schedule.due_slot`). Everything here takes its time from an injected clock.

After a failed scheduled run the dataset is retried every ``retry_every`` minutes up to
``retries`` times (trigger ``retry``, same slot and window). After the last failed retry it is
marked failing and an alert goes out; with ``when_failing="keep"`` (the default) its next slots
still run, with ``"pause"`` they wait until a run succeeds or ``leadferry datasets resume``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import httpx2

from leadferry import alerts
from leadferry.errors import BusyError, LeadferryError
from leadferry.runner import run_dataset, utc_now
from leadferry.schedule import Schedule, due_slot, next_run
from leadferry.settings import Settings
from leadferry.store import Dataset, Run, Store

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def scaled_clock(origin: dt.datetime, speed: float) -> Clock:
    """A clock that starts at *origin* and runs *speed* times faster than real time.

    For demos and end-to-end tests of schedules that would otherwise take hours.
    """
    started = utc_now()

    def now() -> dt.datetime:
        return origin + (utc_now() - started) * speed

    return now


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    dataset: str
    trigger: str
    slot: dt.datetime | None
    attempt: int


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
    """Runs due datasets on a bounded pool of worker threads.

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
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.client = client
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="leadferry-run")
        self.running: dict[str, Future[None]] = {}
        self.alerting: set[Future[None]] = set()
        self._lock = threading.Lock()

    # -- the loop -------------------------------------------------------------------------

    def serve(self, stop: threading.Event, tick_seconds: float = 1.0) -> None:
        """Tick until *stop* is set, then let running work finish."""
        self.store.settle_dead_runs(self.clock())  # each is logged as it is settled
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(tick_seconds)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Let running work and pending alerts finish, then stop the workers."""
        self.pool.shutdown(wait=True)

    def tick(self) -> list[Job]:
        """Start every due slot and retry this service can claim; return what it started."""
        now = self.clock()
        started = []
        for dataset in self.store.due_datasets(now):
            with self._lock:
                if dataset.name in self.running:
                    continue
            job = self._claim(dataset, now)
            if job is None:
                continue
            future = self.pool.submit(self._run, job)
            with self._lock:
                self.running[job.dataset] = future
            future.add_done_callback(lambda _f, name=job.dataset: self._done(name))
            started.append(job)
        self._check_stale(now)
        return started

    def run_now(self, name: str) -> Job:
        """Queue a manual run of dataset *name* on the workers (Run Now).

        A manual run that fails is recorded but neither retried nor marked failing: retries
        belong to schedules. One that succeeds clears a failing mark, as a fix should.

        Raises:
            NotFoundError: no such dataset.
            BusyError: this service is already running it.
        """
        self.store.get_dataset(name)
        job = Job(name, "manual", None, 0)
        with self._lock:
            if name in self.running:
                raise BusyError(f"dataset {name} is already running")
            future = self.pool.submit(self._run, job)
            self.running[name] = future
        future.add_done_callback(lambda _f: self._done(name))
        return job

    def wait(self) -> None:
        """Block until the runs and alerts started so far have finished."""
        with self._lock:
            pending = [*self.running.values(), *self.alerting]
        for future in pending:
            future.result()

    def _done(self, name: str) -> None:
        with self._lock:
            self.running.pop(name, None)

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

    def _run(self, job: Job) -> None:
        try:
            run = run_dataset(
                self.store,
                self.settings,
                job.dataset,
                clock=self.clock,
                trigger=job.trigger,
                client=self.client,
                as_of=job.slot,
                slot=job.slot,
                attempt=job.attempt,
            )
        except BusyError as exc:
            logger.warning("%s: %s; slot %s skipped", job.dataset, exc, job.slot)
        except LeadferryError as exc:
            logger.warning("%s: %s run failed: %s", job.dataset, job.trigger, exc)
            if job.trigger != "manual":
                self._after_failure(job)
        except Exception:
            logger.exception("%s: run crashed", job.dataset)
            if job.trigger != "manual":
                self._after_failure(job)
        else:
            self._after_success(job, run)

    def _after_failure(self, job: Job) -> None:
        dataset = self.store.get_dataset(job.dataset)
        now = self.clock()
        if dataset.retry_every and job.attempt < dataset.retries:
            retry_at = now + dt.timedelta(minutes=dataset.retry_every)
            self.store.set_state(job.dataset, retry_at=retry_at, retry_attempt=job.attempt + 1)
            logger.info("%s: retry %d at %s", job.dataset, job.attempt + 1, retry_at)
            return
        was_failing = dataset.state.failing
        self.store.set_state(job.dataset, failing=True, retry_at=None, retry_attempt=0)
        if not was_failing:
            last = self.store.list_runs(job.dataset, limit=1)[0]
            self._alert(dataset, alerts.failing_alert(job.dataset, last, job.attempt + 1, now))

    def _after_success(self, job: Job, run: Run) -> None:
        dataset = self.store.get_dataset(job.dataset)
        now = self.clock()
        if dataset.state.failing or dataset.state.retry_attempt:
            self.store.set_state(job.dataset, failing=False, retry_at=None, retry_attempt=0)
        if dataset.state.failing:
            self._alert(dataset, alerts.recovered_alert(job.dataset, run, now))
        previous = self.store.list_runs(job.dataset, limit=alerts.ZERO_ROWS_LOOKBACK + 1)
        zero = alerts.zero_rows_alert(job.dataset, run, previous, now)
        if zero is not None:
            self._alert(dataset, zero)

    def _check_stale(self, now: dt.datetime) -> None:
        for dataset in self.store.scheduled_datasets():
            if not dataset.stale_after:
                continue
            last_success = next(
                (
                    r.finished_at
                    for r in self.store.list_runs(dataset.name)
                    if r.status == "success"
                ),
                None,
            )
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
            self.store.set_state(
                dataset.name, alert_state={**dataset.state.alert_state, "stale": episode}
            )
            future = self.pool.submit(self._alert, dataset, alert)
            with self._lock:
                self.alerting.add(future)
            future.add_done_callback(self._alert_sent)

    def _alert_sent(self, future: Future[None]) -> None:
        with self._lock:
            self.alerting.discard(future)

    def _alert(self, dataset: Dataset, alert: alerts.Alert) -> None:
        targets = alerts.AlertTargets.from_settings(
            self.settings,
            webhook=dataset.alert_webhook,
            emails=dataset.alert_emails or None,
        )
        logger.warning("%s: %s", dataset.name, alert.message)
        if targets:
            for problem in alerts.deliver(alert, targets, self.settings, self.client):
                logger.warning("%s: alert not delivered: %s", dataset.name, problem)
