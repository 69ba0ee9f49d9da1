"""Runs spread over Celery workers, as real processes: `leadferry serve --executor celery`, two
`leadferry worker`s, a real redis-server and PostgreSQL on loopback, and `leadferry simulate`.

Every node shares the PostgreSQL store and the secret key; each test has a database and a queue
of its own. The clock runs 600 times faster than real time, read from one real instant by every
process, so schedules come due in seconds and all processes tell the same time.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from leadferry.jobs import Job
from leadferry.store import STALE_RUN_ERROR
from leadferry.store.runs import LEASE_EXPIRED_ERROR
from leadferry.worker import RUN_TASK, celery_app
from tests.e2e.cluster import cluster_of, successes
from tests.e2e.conftest import E2E_KEY, start_simulator, stop, wait_for

pytestmark = pytest.mark.e2e


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
