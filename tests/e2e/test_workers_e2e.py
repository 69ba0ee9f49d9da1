"""Runs spread over Celery workers, as real processes: `leadferry serve --executor celery`, two
`leadferry worker`s, a real redis-server and PostgreSQL on loopback, and `leadferry simulate`.

Every node shares the PostgreSQL store and the secret key; each test has a database and a queue
of its own. The clock runs 600 times faster than real time, read from one real instant by every
process, so schedules come due in seconds and all processes tell the same time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadferry.jobs import Job
from leadferry.schedule import Schedule
from leadferry.scheduler import reschedule
from leadferry.settings import Settings
from leadferry.store import STALE_RUN_ERROR, DatasetSpec, Run, Store
from leadferry.store.runs import LEASE_EXPIRED_ERROR
from leadferry.worker import RUN_TASK, celery_app
from tests.e2e.conftest import E2E_KEY, free_port, start_simulator, stop, wait_for

pytestmark = pytest.mark.e2e
SPEED = 600  # one real second is ten minutes
REPO = Path(__file__).resolve().parents[2]


# -- the servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """LEADFERRY_TEST_REDIS_URL, else a redis-server of our own on a free loopback port."""
    url = os.environ.get("LEADFERRY_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "no Redis for the worker tests: set LEADFERRY_TEST_REDIS_URL, or install "
            "redis-server (make test and .ci/run start the test services)"
        )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        wait_for(lambda: _answers(redis.Redis.from_url(url)), timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """LEADFERRY_TEST_POSTGRES_URL, else a throwaway server started by .ci/postgres."""
    url = os.environ.get("LEADFERRY_TEST_POSTGRES_URL")
    if url:
        return url
    started = subprocess.run(
        ["bash", str(REPO / ".ci" / "postgres")], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"no PostgreSQL for the worker tests (.ci/postgres: {started.stderr.strip()})")
    return started.stdout.strip()


@pytest.fixture
def store_url(postgres_server) -> Iterator[str]:
    """An empty PostgreSQL database of this test's own."""
    import psycopg

    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    name = f"lf_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


class Cluster:
    """One `leadferry` environment shared by serve, the workers, the CLI and this test's store.

    Accounts and datasets are made through the store (the CLI's start-up is slow on a busy
    machine, and the CLI is tested elsewhere); the clock starts when the first node starts.
    """

    def __init__(self, leadferry, redis_url: str, store_url: str, **env: str) -> None:
        self.leadferry = leadferry
        self.queue = f"e2e-{uuid.uuid4().hex[:8]}"
        leadferry.env |= {
            "LEADFERRY_BROKER_URL": redis_url,
            "LEADFERRY_STORE_URL": store_url,
            "LEADFERRY_QUEUE": self.queue,
            **env,
        }
        # Two minutes before the next full hour: the first slots come due right away.
        now = dt.datetime.now(dt.UTC)
        self.slot = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        self.origin = self.slot - dt.timedelta(minutes=2)
        self.started: str | None = None
        self.processes: list[subprocess.Popen] = []
        self.store = Store.open(self.settings())
        self.store.add_user("ada", "e2e-password-31", "admin")

    def settings(self) -> Settings:
        return Settings(
            home=self.leadferry.home,
            broker_url=self.leadferry.env["LEADFERRY_BROKER_URL"],
            store_url=self.leadferry.env["LEADFERRY_STORE_URL"],
            secret_key=self.leadferry.env["LEADFERRY_SECRET_KEY"],
            queue=self.queue,
        )

    def account(self, url: str, name: str = "acme") -> None:
        self.store.create_account(name, "leadexec", {"base_url": url}, {"api_key": E2E_KEY})

    def datasets(self, names, account: str = "acme", **schedule: str | int) -> None:
        """Datasets of LeadExec leads; *schedule* as `datasets schedule` flags (every="1h"),
        none for Run Now only."""
        retries = {key: schedule.pop(key) for key in ("retry_every", "retries") if key in schedule}
        plan = Schedule.from_flags(**schedule).as_json() if schedule else None
        for name in names:
            dataset = self.store.create_dataset(
                DatasetSpec(
                    name=name,
                    account=account,
                    report="leads",
                    params={"lid": 271},
                    update_method="merge",
                    schedule=plan,
                    **retries,
                )  # fmt: skip
            )
            if plan is not None:
                reschedule(self.store, dataset, self.origin)

    def runs(self, name: str) -> list[Run]:
        return self.store.list_runs(name)

    def serve(self) -> subprocess.Popen:
        return self._start("serve", "--executor", "celery", "--tick", "0.2",
                           "--port", str(free_port()))  # fmt: skip

    def worker(self, name: str, concurrency: int = 2, processes: int = 1) -> subprocess.Popen:
        return self._start("worker", "--name", name, "--concurrency", str(concurrency),
                           "--processes", str(processes))  # fmt: skip

    def _start(self, *args: str) -> subprocess.Popen:
        self.started = self.started or dt.datetime.now(dt.UTC).isoformat()
        clock = ["--clock-origin", self.origin.isoformat(), "--clock-speed", str(SPEED),
                 "--clock-started", self.started]  # fmt: skip
        process = self.leadferry.start(*args, *clock)
        self.processes.append(process)
        return process

    def stop_all(self) -> list[str]:
        """SIGTERM every process still running; return their standard errors."""
        errors = []
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=120)
            errors.append(err)
        return errors

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
        self.store.close()


@contextlib.contextmanager
def cluster_of(leadferry, redis_url, store_url, **env: str) -> Iterator[Cluster]:
    made = Cluster(leadferry, redis_url, store_url, **env)
    try:
        yield made
    finally:
        made.close()


# -- helpers -------------------------------------------------------------------------------------


def successes(cluster, name) -> list[Run]:
    return [run for run in cluster.runs(name) if run.status == "success"]


# -- the tests -----------------------------------------------------------------------------------


def test_serve_and_two_workers_run_every_slot_once_on_both_workers(
    leadferry, redis_url, store_url, leadexec_server
):
    names = [f"burst_{i}" for i in range(6)]
    with cluster_of(leadferry, redis_url, store_url) as cluster:
        cluster.account(leadexec_server.url)
        cluster.datasets(names, every="1h")
        cluster.worker("one@e2e", processes=2)  # its processes are one.1@e2e and one.2@e2e
        cluster.worker("two@e2e")
        cluster.serve()
        for name in names:
            wait_for(lambda name=name: len(successes(cluster, name)) >= 2, timeout=240)
        cluster.stop_all()
    workers = set()
    for name in names:
        history = json.loads(leadferry.ok("history", name, "--json", "--limit", "100"))
        slots = [run["slot"] for run in history]
        assert None not in slots
        assert len(slots) == len(set(slots)), f"{name}: a slot ran twice"
        assert {run["status"] for run in history} == {"success"}
        assert {run["trigger"] for run in history} == {"scheduled"}
        workers |= {run["worker"] for run in history}
    assert "two@e2e" in workers
    assert workers - {"two@e2e"} <= {"one.1@e2e", "one.2@e2e"}
    assert workers & {"one.1@e2e", "one.2@e2e"}


def test_a_job_delivered_twice_runs_once(leadferry, redis_url, store_url, leadexec_server):
    with cluster_of(leadferry, redis_url, store_url) as cluster:
        cluster.account(leadexec_server.url)
        cluster.datasets(["twice"])
        worker = cluster.worker("solo@e2e", concurrency=1)  # one process: jobs taken in order
        app = celery_app(cluster.settings())
        job = Job("twice", "manual", None, 0)
        later = Job("twice", "manual", None, 0)
        # One worker taking one job at a time takes them in order: the copy before `later`.
        for sent in (job, job, later):
            app.send_task(RUN_TASK, kwargs={"job": sent.as_message()}, queue=cluster.queue)
        app.close()
        wait_for(lambda: len(successes(cluster, "twice")) == 2, timeout=240)
        worker.send_signal(signal.SIGTERM)
        (err,) = cluster.stop_all()
        history = cluster.runs("twice")
    assert [run.status for run in history] == ["success", "success"]
    assert {run.worker for run in history} == {"solo@e2e"}
    assert f"job {job.key} already ran" in err


@pytest.mark.parametrize(
    ("stop_signal", "error", "processes"),
    [
        # kill -9: on this host the process is seen to be gone.
        (signal.SIGKILL, STALE_RUN_ERROR, 1),
        # kill -9 of a worker of two processes: the one running the run goes with it.
        (signal.SIGKILL, STALE_RUN_ERROR, 2),
        # A frozen worker, or one whose machine is gone: only its silence tells.
        (signal.SIGSTOP, LEASE_EXPIRED_ERROR, 1),
        # One frozen process of a worker of two: the other's heartbeats do not renew its run.
        (signal.SIGSTOP, LEASE_EXPIRED_ERROR, 2),
    ],
    ids=["killed", "killed-of-two", "frozen", "one-of-two-frozen"],
)
def test_a_lost_worker_s_run_is_interrupted_then_retried(
    leadferry, redis_url, store_url, leadexec_server, stop_signal, error, processes
):
    slow = start_simulator("leadexec", "--leads", "4000", "--days", "10", "--lid", "271",
                           "--latency-ms", "5000", "--api-key", E2E_KEY)  # fmt: skip
    try:
        with cluster_of(leadferry, redis_url, store_url, LEADFERRY_RUN_LEASE="6") as cluster:
            cluster.account(slow.url)
            # A retry ten minutes (one real second) after a failure, twice at most. A lease of
            # 6 s: a live worker's heartbeats (every 1.5 s) arrive in time on a busy machine.
            cluster.datasets(["doomed"], monthly=monthly(cluster), retry_every=10, retries=2)
            first = cluster.worker("first@e2e", concurrency=1, processes=processes)
            cluster.serve()
            wait_for(lambda: [r for r in cluster.runs("doomed") if r.status == "running"], 120)
            (running,) = [r for r in cluster.runs("doomed") if r.status == "running"]
            # The worker is killed whole; a process is frozen alone (its machine's others live).
            target = running.pid if stop_signal == signal.SIGSTOP else first.pid
            os.kill(target, stop_signal)
            if stop_signal == signal.SIGKILL:
                first.wait(timeout=30)  # reaped, as its service manager would: no zombie
            cluster.store.update_account("acme", config={"base_url": leadexec_server.url},
                                         secrets={"api_key": E2E_KEY})  # fmt: skip
            cluster.worker("second@e2e", concurrency=1)
            wait_for(lambda: successes(cluster, "doomed"), timeout=240)
            if stop_signal == signal.SIGSTOP:
                os.kill(target, signal.SIGKILL)
            first.kill()
            cluster.stop_all()
            history = cluster.runs("doomed")
    finally:
        stop(slow)
    shown = [(r.trigger, r.status, r.worker, r.attempt, r.error) for r in history]
    assert len(history) == 2, shown
    retried, lost = history
    first_names = {"first@e2e"} if processes == 1 else {"first.1@e2e", "first.2@e2e"}
    assert (lost.status, lost.trigger, lost.error) == ("interrupted", "scheduled", error)
    assert lost.worker in first_names
    # A frozen process's sibling may take the retry; a killed worker's processes are all gone.
    may_retry = {"second@e2e"} | (
        first_names - {lost.worker} if stop_signal == signal.SIGSTOP else set()
    )
    assert (retried.status, retried.trigger) == ("success", "retry")
    assert retried.worker in may_retry
    assert retried.slot == lost.slot
    assert retried.attempt == 1


def test_the_per_account_cap_holds_across_workers(leadferry, redis_url, store_url, leadexec_server):
    capped = [f"capped_{i}" for i in range(4)]
    with cluster_of(leadferry, redis_url, store_url, LEADFERRY_ACCOUNT_CONCURRENCY="1") as cluster:
        cluster.account(leadexec_server.url)
        cluster.account(leadexec_server.url, "other")
        cluster.datasets(capped, monthly=monthly(cluster))
        cluster.datasets(["elsewhere"], account="other", monthly=monthly(cluster))
        cluster.worker("one@e2e", processes=2)
        cluster.worker("two@e2e")
        cluster.serve()
        most = 0
        deadline = time.monotonic() + 240
        while not all(finished(cluster, name) for name in [*capped, "elsewhere"]):
            assert time.monotonic() < deadline, "timed out"
            most = max(most, cluster.store.running_per_account().get("acme", 0))
            time.sleep(0.05)
        cluster.stop_all()
        outcomes = {
            name: [run.status for run in cluster.runs(name)] for name in [*capped, "elsewhere"]
        }
    assert most == 1
    assert outcomes == {name: ["success"] for name in [*capped, "elsewhere"]}


def monthly(cluster) -> str:
    """A monthly schedule whose first slot comes due at once: its next slot is 72 minutes of
    real time away, so a slow test never sees it."""
    return f"{cluster.slot.day}@{cluster.slot:%H:%M}"


def finished(cluster, name) -> bool:
    last = cluster.store.get_dataset(name).last_run
    return last is not None and last.status != "running"
