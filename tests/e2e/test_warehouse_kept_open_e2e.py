"""A long-lived process keeps the DuckDB warehouse open between its loads: real processes show
that others still get in, and that a kill -9 of the holder loses and repeats nothing.

The holder is either a small script that keeps the file as ``serve`` and ``leadferry worker``
do, but for an hour (so that only a waiter can make it let go), or a real ``leadferry worker``
(Redis, and the PostgreSQL store of the worker tests).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import lock_is_held
from tests.e2e.cluster import cluster_of, successes
from tests.e2e.conftest import account_in_store, wait_for

pytestmark = pytest.mark.e2e

_HOLDER = """
import sys
from leadferry import warehouse
from leadferry.settings import Settings

warehouse.KEEP_OPEN_SECONDS = 3600  # only a waiter makes it let go
settings = Settings()
with warehouse.keep_open_between_loads("the test holder"):
    for line in sys.stdin:
        with warehouse.warehouse_writer(settings, "the test holder's load") as (connection, _):
            connection.execute("create schema if not exists holder")
            connection.execute("create table if not exists holder.loads (n integer)")
            connection.execute("insert into holder.loads values (?)", [int(line)])
        print("held", flush=True)
"""
WAIT_TIMEOUT = 20.0
"""Seconds the run and the query may wait for the warehouse (the holder keeps it for an hour)."""


def kill_while_idle(holder: subprocess.Popen, leadferry, lock) -> None:
    """Between the holder's loads: a `leadferry run`, then a `leadferry query`; then a kill -9
    of the holder while it keeps its third load in the write-ahead log."""

    def load(n: int) -> None:
        holder.stdin.write(f"{n}\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "held\n"
        assert lock_is_held(lock)
        assert lock.read_text() == "the test holder (keeping it open between runs)"

    # Each succeeds only if the holder let go within its timeout (else "the warehouse is busy").
    load(1)
    leadferry.ok("run", "acme_leads")  # another process's writer
    load(2)
    counted = leadferry.ok("query", "select count(*) as n from holder.loads", "--json")
    assert json.loads(counted) == [{"n": 2}]
    load(3)
    assert (leadferry.home / "warehouse.duckdb.wal").exists()  # committed, not checkpointed
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)


def test_a_query_and_a_run_get_in_while_a_process_keeps_the_warehouse_and_a_kill_loses_nothing(
    leadferry, leadexec_server
):
    account_in_store(leadferry, leadexec_server.url)
    leadferry.ok("datasets", "create", "acme_leads", "-a", "acme", "-r", "leads",
                 "--param", "lid=271", "--days-back", "10")  # fmt: skip
    leadferry.env |= {"LEADFERRY_WRITER_TIMEOUT": str(WAIT_TIMEOUT),
                      "LEADFERRY_LOCK_TIMEOUT": str(WAIT_TIMEOUT)}  # fmt: skip
    lock = leadferry.home / "warehouse.duckdb.lock"
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        env=leadferry.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            kill_while_idle(holder, leadferry, lock)
        finally:
            if holder.poll() is None:
                holder.kill()
    # The next opener replays the log: every committed load, each once.
    counted = leadferry.ok("query", "select list(n order by n) as n from holder.loads", "--json")
    assert json.loads(counted) == [{"n": [1, 2, 3]}]
    history = json.loads(leadferry.ok("history", "acme_leads", "--json"))
    assert [run["status"] for run in history] == ["success"]


def test_a_worker_killed_while_it_keeps_the_warehouse_loses_and_repeats_no_load(
    leadferry,
    redis_url,  # noqa: F811  (the worker tests' fixtures)
    store_url,  # noqa: F811
    leadexec_server,
):
    from leadferry.jobs import Job
    from leadferry.worker import RUN_TASK, celery_app

    lock = leadferry.home / "warehouse.duckdb.lock"
    with cluster_of(leadferry, redis_url, store_url) as cluster:
        cluster.account(leadexec_server.url)
        cluster.datasets(["kept"])
        worker = cluster.worker("keeper@e2e", concurrency=1)
        app = celery_app(cluster.settings())
        try:
            # Runs until one is seen done while the worker still keeps the file (for 2 s after
            # a load): then it is killed with the load in the write-ahead log only.
            for sent in range(1, 6):
                job = Job("kept", "manual", None, 0)
                app.send_task(RUN_TASK, kwargs={"job": job.as_message()}, queue=cluster.queue)
                wait_for(lambda sent=sent: len(successes(cluster, "kept")) == sent, timeout=120)
                wal = leadferry.home / "warehouse.duckdb.wal"
                if lock_is_held(lock) and "keeper@e2e" in lock.read_text() and wal.exists():
                    break
            else:
                pytest.fail("the worker never kept the warehouse open after a run")
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        finally:
            app.close()
        loaded = len(successes(cluster, "kept"))
        assert [run.status for run in cluster.runs("kept")] == ["success"] * loaded
        cluster.stop_all()
    with duckdb.connect(str(leadferry.home / "warehouse.duckdb"), read_only=True) as connection:
        (loads,) = connection.execute("select count(*) from kept._leadferry_loads").fetchone()
        (distinct,) = connection.execute(
            "select count(distinct run_id) from kept._leadferry_loads"
        ).fetchone()
    assert loads == distinct == loaded
