"""Runs spread over Celery workers, as real processes: `leadferry serve --executor celery`, two
`leadferry worker`s, a real redis-server and PostgreSQL on loopback, and `leadferry simulate`.

Every node shares the PostgreSQL store and the secret key; each test has a database and a queue
of its own. The clock runs 600 times faster than real time, read from one real instant by every
process, so schedules come due in seconds and all processes tell the same time.
"""

from __future__ import annotations

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
from leadferry.settings import Settings
from leadferry.store import Store
from leadferry.worker import RUN_TASK, celery_app
from tests.e2e.conftest import E2E_KEY, add_account, add_user, free_port, start_simulator, stop

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
    """One `leadferry` home and environment shared by serve, the workers and the CLI."""

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
        self.clock = [
            "--clock-origin",
            self.origin.isoformat(),
            "--clock-speed",
            str(SPEED),
            "--clock-started",
            dt.datetime.now(dt.UTC).isoformat(),
        ]
        self.processes: list[subprocess.Popen] = []

    def settings(self) -> Settings:
        return Settings(
            home=self.leadferry.home,
            broker_url=self.leadferry.env["LEADFERRY_BROKER_URL"],
            store_url=self.leadferry.env["LEADFERRY_STORE_URL"],
            secret_key=self.leadferry.env["LEADFERRY_SECRET_KEY"],
            queue=self.queue,
        )

    def serve(self) -> subprocess.Popen:
        return self._start("serve", "--executor", "celery", "--tick", "0.2",
                           "--port", str(free_port()), *self.clock)  # fmt: skip

    def worker(self, name: str, concurrency: int = 2) -> subprocess.Popen:
        return self._start("worker", "--name", name, "--concurrency", str(concurrency),
                           *self.clock)  # fmt: skip

    def _start(self, *args: str) -> subprocess.Popen:
        process = self.leadferry.start(*args)
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


@pytest.fixture
def cluster(leadferry, redis_url, store_url) -> Iterator[Cluster]:
    made = Cluster(leadferry, redis_url, store_url)
    yield made
    for process in made.processes:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=60)


# -- helpers -------------------------------------------------------------------------------------


def wait_for(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


def runs(leadferry, name):
    return json.loads(leadferry.ok("history", name, "--json", "--limit", "100"))


def create_datasets(leadferry, names, account="acme"):
    for name in names:
        leadferry.ok("datasets", "create", name, "--account", account, "--report", "leads",
                     "--param", "lid=271", "--update", "merge")  # fmt: skip


def schedule(cluster, names, *flags):
    for name in names:
        cluster.leadferry.ok(
            "datasets", "schedule", name, *flags, "--now", cluster.origin.isoformat()
        )


def finished(store, name) -> bool:
    last = store.get_dataset(name).last_run
    return last is not None and last.status != "running"


def successes(leadferry, name):
    return [r for r in runs(leadferry, name) if r["status"] == "success"]


# -- the tests -----------------------------------------------------------------------------------


def test_serve_and_two_workers_run_every_slot_once_on_both_workers(cluster, leadexec_server):
    leadferry = cluster.leadferry
    add_user(leadferry)
    add_account(leadferry, leadexec_server.url)
    names = [f"burst_{i}" for i in range(6)]
    create_datasets(leadferry, names)
    schedule(cluster, names, "--every", "1h")
    cluster.worker("one@e2e")
    cluster.worker("two@e2e")
    cluster.serve()
    for name in names:
        wait_for(lambda name=name: len(successes(leadferry, name)) >= 2, timeout=180)
    cluster.stop_all()
    workers = set()
    for name in names:
        history = runs(leadferry, name)
        slots = [r["slot"] for r in history]
        assert None not in slots
        assert len(slots) == len(set(slots)), f"{name}: a slot ran twice"
        assert {r["status"] for r in history} == {"success"}
        assert {r["trigger"] for r in history} == {"scheduled"}
        workers |= {r["worker"] for r in history}
    assert workers == {"one@e2e", "two@e2e"}


def test_a_job_delivered_twice_runs_once(cluster, leadexec_server):
    leadferry = cluster.leadferry
    add_account(leadferry, leadexec_server.url)
    create_datasets(leadferry, ["twice"])
    worker = cluster.worker("solo@e2e", concurrency=1)
    app = celery_app(cluster.settings())
    job = Job("twice", "manual", None, 0)
    later = Job("twice", "manual", None, 0)
    # One worker taking one job at a time takes them in order: the copy comes before `later`.
    for sent in (job, job, later):
        app.send_task(RUN_TASK, kwargs={"job": sent.as_message()}, queue=cluster.queue)
    app.close()
    wait_for(lambda: len(successes(leadferry, "twice")) == 2, timeout=120)
    worker.send_signal(signal.SIGTERM)
    (err,) = cluster.stop_all()
    history = runs(leadferry, "twice")
    assert [r["status"] for r in history] == ["success", "success"]
    assert {r["worker"] for r in history} == {"solo@e2e"}
    assert f"job {job.key} already ran" in err


def test_a_killed_worker_s_run_is_interrupted_within_the_lease_then_retried(
    leadferry, redis_url, store_url, leadexec_server
):
    cluster = Cluster(leadferry, redis_url, store_url, LEADFERRY_RUN_LEASE="2")
    slow = start_simulator("leadexec", "--leads", "4000", "--days", "10", "--lid", "271",
                           "--latency-ms", "5000", "--api-key", E2E_KEY)  # fmt: skip
    try:
        add_user(leadferry)
        add_account(leadferry, slow.url)
        create_datasets(leadferry, ["doomed"])
        # A retry ten minutes (one real second) after a failure, twice at most.
        daily = ["--daily", f"{cluster.slot:%H:%M}"]
        schedule(cluster, ["doomed"], *daily, "--retry-every", "10", "--retries", "2")
        first = cluster.worker("first@e2e", concurrency=1)
        cluster.serve()
        wait_for(lambda: [r for r in runs(leadferry, "doomed") if r["status"] == "running"])
        first.kill()  # kill -9: no chance to record anything
        first.communicate(timeout=30)
        leadferry.ok("accounts", "edit", "acme", "--set", f"base_url={leadexec_server.url}",
                     env={"LEADFERRY_API_KEY": E2E_KEY})  # fmt: skip
        cluster.worker("second@e2e", concurrency=1)
        wait_for(lambda: successes(leadferry, "doomed"), timeout=120)
        cluster.stop_all()
    finally:
        for process in cluster.processes:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
        stop(slow)
    retried, killed = runs(leadferry, "doomed")
    assert (killed["status"], killed["worker"], killed["trigger"]) == (
        "interrupted", "first@e2e", "scheduled"
    )  # fmt: skip
    assert "lease expired" in killed["error"]
    assert (retried["status"], retried["worker"], retried["trigger"]) == (
        "success", "second@e2e", "retry"
    )  # fmt: skip
    assert retried["slot"] == killed["slot"]
    assert retried["attempt"] == 1


def test_the_per_account_cap_holds_across_workers(leadferry, redis_url, store_url, leadexec_server):
    cluster = Cluster(leadferry, redis_url, store_url, LEADFERRY_ACCOUNT_CONCURRENCY="1")
    add_user(leadferry)
    add_account(leadferry, leadexec_server.url)
    add_account(leadferry, leadexec_server.url, "other")
    capped = [f"capped_{i}" for i in range(4)]
    create_datasets(leadferry, capped)
    create_datasets(leadferry, ["elsewhere"], account="other")
    schedule(cluster, [*capped, "elsewhere"], "--daily", f"{cluster.slot:%H:%M}")
    try:
        cluster.worker("one@e2e")
        cluster.worker("two@e2e")
        cluster.serve()
        most = 0
        deadline = time.monotonic() + 180
        with Store.open(cluster.settings()) as store:
            while not all(finished(store, name) for name in [*capped, "elsewhere"]):
                assert time.monotonic() < deadline, "timed out"
                most = max(most, store.running_per_account().get("acme", 0))
                time.sleep(0.05)
        cluster.stop_all()
    finally:
        for process in cluster.processes:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
    assert most == 1
    for name in [*capped, "elsewhere"]:
        assert [r["status"] for r in runs(leadferry, name)] == ["success"]
