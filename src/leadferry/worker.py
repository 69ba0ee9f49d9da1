"""Celery, for runs spread over workers: the app ``serve --executor celery`` sends jobs with, and
the ``leadferry worker`` that runs them.

Celery delivers a job at least once. The settings below make a lost worker's job come back
rather than vanish (late acks, reject on worker lost, one message prefetched at a time), and
the store makes a job that comes back twice run once: the run records the job's key, and a
second claim of the key is refused (:class:`~leadferry.errors.DuplicateJobError`). Celery's
own retries are used for one thing only: a job whose account already runs its most datasets
at once goes back to the queue for a few seconds. Failed runs follow the dataset's retry
policy in the store, which the scheduler turns into new jobs.

A worker of several processes (``leadferry worker --processes N``, by default one per core:
runs spend most of their CPU under one GIL) is a supervisor and N children, each a whole
single-process worker with its own node name, store connection, heartbeat and broker
connection, so each child keeps every guarantee above on its own. The supervisor passes a
stop on to them and stops them all when one ends; a child whose supervisor is killed kills
itself, as one process of a worker killed with ``kill -9`` would be.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from leadferry.errors import AccountBusyError, ConfigError
from leadferry.executors import ACCOUNT_WAIT_SECONDS
from leadferry.jobs import Job, JobContext, execute
from leadferry.settings import Settings
from leadferry.warehouse import keep_open_between_loads

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

RUN_TASK = "leadferry.run"
VISIBILITY_TIMEOUT = 6 * 3600
"""Seconds before Redis hands a taken but unacknowledged job to another worker; longer than
any run, so a slow run is never started twice (the store would refuse it anyway)."""


def celery_app(settings: Settings) -> Celery:
    """The Celery app on ``settings.broker_url``, configured for runs that must not be lost.

    Raises:
        ConfigError: Celery is not installed, or the broker is not set or not Redis.
    """
    try:
        from celery import Celery
    except ImportError:
        raise ConfigError(
            "Celery is not installed: pip install 'leadferry[celery]' on every node"
        ) from None
    app = Celery("leadferry", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


def broker_url(settings: Settings) -> str:
    if settings.broker_url is None:
        raise ConfigError(
            "LEADFERRY_BROKER_URL is not set: point every node at the same Redis server, "
            "e.g. redis://redis.internal:6379/0"
        )
    url = settings.broker_url.get_secret_value()
    if urlsplit(url).scheme not in ("redis", "rediss"):
        raise ConfigError("LEADFERRY_BROKER_URL must be a redis:// or rediss:// URL")
    return url


def check_shared(settings: Settings) -> None:
    """Refuse a node that cannot share the store, key and warehouse with the others.

    With a broker on loopback every node runs on this machine and shares its home folder, so
    the SQLite store, the key file and the DuckDB warehouse are shared too. With a broker
    elsewhere, nodes are on several machines: each must name the shared store, key and warehouse.

    Raises:
        ConfigError: one line naming what is missing.
    """
    host = urlsplit(broker_url(settings)).hostname or ""
    if _is_loopback(host):
        return
    missing = []
    if settings.store_url is None or settings.metadata_url.startswith("sqlite"):
        missing.append("LEADFERRY_STORE_URL (a PostgreSQL store: SQLite is a file on one machine)")
    if settings.secret_key is None:
        missing.append("LEADFERRY_SECRET_KEY (the same key on every node)")
    if settings.warehouse_postgres_url is None:
        missing.append(
            "LEADFERRY_WAREHOUSE_URL (a PostgreSQL warehouse: the DuckDB file is on one machine)"
        )
    if missing:
        raise ConfigError(
            f"the broker is on another machine ({host}), so nodes must share their state: "
            f"set {' and '.join(missing)}"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_broker(app: Celery) -> None:
    """Connect to the broker once, so a node that cannot reach it says so and stops.

    Raises:
        ConfigError: the broker does not answer.
    """
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:
        where = urlsplit(app.conf.broker_url)
        raise ConfigError(
            f"cannot reach the broker at {where.hostname}:{where.port or 6379} "
            f"(LEADFERRY_BROKER_URL): {type(exc).__name__}"
        ) from None


def node_name(name: str | None) -> str:
    """The worker's Celery node name, which the history shows as the runs' worker."""
    return name or f"leadferry-{os.getpid()}@{socket.gethostname()}"


def register_run_task(app: Celery, context: JobContext) -> None:
    """Teach *app* to run jobs with *context* (the worker's store, settings and name)."""

    @app.task(name=RUN_TASK, bind=True, max_retries=None)
    def run(task: Any, job: dict[str, Any]) -> None:
        try:
            execute(Job.from_message(job), context)
        except AccountBusyError as exc:
            logger.info("%s; back to the queue for %gs", exc, ACCOUNT_WAIT_SECONDS)
            raise task.retry(countdown=ACCOUNT_WAIT_SECONDS) from None


def run_worker(app: Celery, name: str, concurrency: int, queues: list[str]) -> int:
    """Run a Celery worker in this process until it is stopped; return its exit code.

    One process, ``concurrency`` threads: runs wait on vendors and the store most of the time,
    and a ``kill -9`` takes the whole worker (its runs' lease then lapses). The DuckDB warehouse
    stays open between the runs' loads (:func:`~leadferry.warehouse.keep_open_between_loads`).
    """
    worker = app.Worker(
        hostname=name,
        pool_cls="threads",
        concurrency=concurrency,
        queues=queues,
        loglevel="INFO",
        without_gossip=True,
        without_mingle=True,
        quiet=True,
    )
    with keep_open_between_loads(f"leadferry worker {name}"):
        worker.start()
    return int(worker.exitcode or 0)


def default_processes() -> int:
    """One worker process per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def process_names(name: str | None, processes: int) -> list[str | None]:
    """The node name of each of a worker's *processes*: *name* itself for one; ``one.1@host``,
    ``one.2@host``... for ``one@host`` (the history tells the processes apart, and each renews
    the lease of its own runs); none given, each picks ``leadferry-PID@HOST``."""
    if processes == 1 or name is None:
        return [name] * processes
    local, at, host = name.partition("@")
    return [f"{local}.{number}{at}{host}" for number in range(1, processes + 1)]


PARENT_POLL_SECONDS = 0.5


def die_with_parent(parent: int) -> None:
    """Kill this process once *parent* (the supervising ``leadferry worker``) is gone.

    Its runs then end as the parent's would have, had it been one process: interrupted (the
    process is gone), then retried by their datasets' retry policy.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        logger.error("the supervising worker (pid %d) is gone: stopping at once", parent)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="leadferry-parent-watch", daemon=True).start()


def supervise(commands: Sequence[Sequence[str]]) -> int:
    """Run one child process per command until they end; return the worker's exit code.

    SIGTERM or SIGINT is passed on as SIGTERM (each child finishes its running runs). A child
    that ends on its own (a crash, ``kill -9``) stops the others the same way, so the worker
    ends and its service manager starts it again whole; the code is the first child's that
    failed.
    """
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(_signum: int = 0, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        for command in commands:
            if not stopping:
                children.append(subprocess.Popen(command))
        running = list(children)
        while running:
            time.sleep(PARENT_POLL_SECONDS)
            for child in [child for child in running if child.poll() is not None]:
                running.remove(child)
                if child.returncode and not code:
                    code = child.returncode if child.returncode > 0 else 1
                if not stopping:
                    logger.error(
                        "worker process %d ended (exit code %d): stopping the others",
                        child.pid, child.returncode,
                    )  # fmt: skip
                    code = code or 1
                    stop()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return code
