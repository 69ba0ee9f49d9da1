"""What lets runs spread over workers: leases, job keys, the per-account cap, alerts claimed once.

A real SQLite store; the lease is measured on the wall clock, so runs are given stale heartbeats
by a second store whose lease is shorter rather than by waiting.
"""

from __future__ import annotations

import datetime as dt

import pytest

from leadferry.errors import AccountBusyError, BusyError, DuplicateJobError
from leadferry.store import DatasetSpec, Store
from leadferry.store.runs import LEASE_EXPIRED_ERROR

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def dataset(store, name, account="acme"):
    return store.create_dataset(DatasetSpec(name=name, account=account, report="leads"))


@pytest.fixture
def short_lease(settings):
    """The same store, seen by a node whose lease is a millisecond: every heartbeat is stale."""
    impatient = settings.model_copy(update={"run_lease": 0.001})
    with Store.open(impatient) as store:
        yield store


def test_a_worker_s_run_is_interrupted_once_its_lease_lapses(store, acme, short_lease):
    dataset(store, "leads")
    run = store.start_run("leads", "scheduled", None, None, NOW, slot=NOW, worker="w1@host")
    assert store.settle_dead_runs(NOW, leased=True) == []  # the heartbeat is fresh for a 60 s lease
    assert store.heartbeat("w1@host") == 1
    (interrupted,) = short_lease.settle_dead_runs(NOW, leased=True)
    assert (interrupted.id, interrupted.worker) == (run.id, "w1@host")
    ended = store.get_run(run.id)
    assert (ended.status, ended.error) == ("interrupted", LEASE_EXPIRED_ERROR)
    assert store.heartbeat("w1@host") == 0


def test_a_run_without_a_worker_has_no_lease_and_names_its_process(store, acme, short_lease):
    dataset(store, "leads")
    run = store.start_run("leads", "manual", None, None, NOW)
    assert short_lease.settle_dead_runs(NOW, leased=True) == []  # this process is alive
    assert run.worker is not None
    assert run.worker.endswith(f":{run.pid}")


def test_a_job_key_runs_once(store, acme):
    dataset(store, "leads")
    run = store.start_run("leads", "manual", None, None, NOW, job_key="job-1")
    store.finish_run(run.id, "success", NOW)
    with pytest.raises(DuplicateJobError, match=f"job job-1 already ran as run {run.id}"):
        store.start_run("leads", "manual", None, None, NOW, job_key="job-1")
    other = store.start_run("leads", "manual", None, None, NOW, job_key="job-2")
    assert other.status == "running"


def test_the_account_cap_refuses_a_run_past_it(settings, acme):
    settings.account_concurrency = 2
    with Store.open(settings) as store:
        store.create_account("other", "leadexec", {"base_url": "http://x.test/"}, {"api_key": "k"})
        for name in ("a", "b", "c"):
            dataset(store, name)
        dataset(store, "elsewhere", account="other")
        first = store.start_run("a", "manual", None, None, NOW)
        store.start_run("b", "manual", None, None, NOW)
        with pytest.raises(AccountBusyError, match="account 'acme' already runs 2 datasets"):
            store.start_run("c", "manual", None, None, NOW)
        store.start_run("elsewhere", "manual", None, None, NOW)
        assert store.running_per_account() == {"acme": 2, "other": 1}
        store.finish_run(first.id, "success", NOW)
        assert store.start_run("c", "manual", None, None, NOW).status == "running"


def test_a_running_dataset_is_still_busy_for_a_new_job(store, acme):
    dataset(store, "leads")
    store.start_run("leads", "scheduled", None, None, NOW, worker="w1@host", job_key="j1")
    with pytest.raises(BusyError, match="already running"):
        store.start_run("leads", "retry", None, None, NOW, worker="w2@host", job_key="j2")


def test_an_alert_episode_is_claimed_once(store, acme):
    dataset(store, "leads")
    assert store.claim_alert("leads", "stale", "2026-11-20T00:00:00+00:00")
    assert not store.claim_alert("leads", "stale", "2026-11-20T00:00:00+00:00")
    assert store.claim_alert("leads", "stale", "2026-11-21T00:00:00+00:00")
    assert store.get_dataset("leads").state.alert_state == {"stale": "2026-11-21T00:00:00+00:00"}
