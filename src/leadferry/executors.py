"""Where the scheduler's jobs run: this process's thread pool (the default), or Celery workers.

An executor takes a claimed :class:`~leadferry.jobs.Job` and sees that it runs once. The thread
pool runs it here; the Celery executor sends it to the broker's queue, where any
``leadferry worker`` takes it (:mod:`leadferry.worker`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from leadferry.errors import AccountBusyError, BusyError
from leadferry.jobs import Job
from leadferry.settings import Settings

logger = logging.getLogger(__name__)

ACCOUNT_WAIT_SECONDS = 5.0
"""How long a job whose account runs its most datasets waits before it tries again."""


class Executor(Protocol):
    def submit(self, job: Job) -> None:
        """Run *job* (here or elsewhere); BusyError if this executor already has its dataset."""

    def queued(self, name: str) -> bool:
        """Whether this executor holds a job of dataset *name* that has not finished."""

    def cancel(self, name: str) -> bool:
        """Drop the job of dataset *name* if it waits here and has not started; say if it did."""

    def wait(self) -> None:
        """Block until the jobs submitted here so far have finished."""

    def shutdown(self) -> None:
        """Let the jobs running here finish, then stop."""


class ThreadExecutor:
    """Runs jobs on a bounded pool of threads in this process."""

    def __init__(self, workers: int, run: Callable[[Job], object]) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="leadferry-run")
        self._stopping = threading.Event()
        self.running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        with self._lock:
            if job.dataset in self.running:
                raise BusyError(f"dataset {job.dataset} is already running")
            future = self._pool.submit(self._work, job)
            self.running[job.dataset] = future
        future.add_done_callback(lambda _f: self._done(job.dataset))

    def queued(self, name: str) -> bool:
        # A finished job lingers in ``running`` until its done-callback removes it.
        future = self.running.get(name)
        return future is not None and not future.done()

    def cancel(self, name: str) -> bool:
        with self._lock:
            future = self.running.get(name)
        # Outside the lock: a cancelled future calls _done at once, which takes it.
        return future is not None and future.cancel()

    def wait(self) -> None:
        with self._lock:
            pending = list(self.running.values())
        for future in pending:
            future.result()

    def shutdown(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=True)

    def _work(self, job: Job) -> None:
        while True:
            try:
                self._run(job)
            except AccountBusyError as exc:
                logger.info("%s; trying again in %gs", exc, ACCOUNT_WAIT_SECONDS)
                if self._stopping.wait(ACCOUNT_WAIT_SECONDS):
                    logger.warning("%s: not run, the service stopped first", job.dataset)
                    return
            else:
                return

    def _done(self, name: str) -> None:
        with self._lock:
            self.running.pop(name, None)


class CeleryExecutor:
    """Sends jobs to the Celery queue ``settings.queue``; ``leadferry worker``s run them."""

    def __init__(self, settings: Settings) -> None:
        from leadferry.worker import RUN_TASK, celery_app

        self.app = celery_app(settings)
        self._task = RUN_TASK
        self._queue = settings.queue

    def submit(self, job: Job) -> None:
        self.app.send_task(self._task, kwargs={"job": job.as_message()}, queue=self._queue)
        logger.info("%s: %s job %s sent to %s", job.dataset, job.trigger, job.key, self._queue)

    def queued(self, name: str) -> bool:
        return False  # the store's running runs tell what workers do

    def cancel(self, name: str) -> bool:
        return False  # once sent, a job is the workers'; its running run can be asked to stop

    def wait(self) -> None:
        """Nothing to wait for here: workers run the jobs."""

    def shutdown(self) -> None:
        self.app.close()
