from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta, timezone

import pytest

from leadferry.errors import BusyError, ConflictError, NotFoundError
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store

from ._support import T0

PARIS = timezone(timedelta(hours=2))


def test_a_run_starts_running_by_this_process(store: Store, dataset: str) -> None:
    start, end = T0 - timedelta(days=7), T0
    run = store.start_run(dataset, "scheduled", start, end, T0)
    assert (run.dataset, run.trigger, run.status) == (dataset, "scheduled", "running")
    assert (run.window_start, run.window_end, run.started_at) == (start, end, T0)
    assert (run.finished_at, run.rows, run.error, run.load_id, run.schema_changes) == (
        None,
        {},
        None,
        None,
        [],
    )
    assert (run.pid, run.host) == (os.getpid(), socket.gethostname())
    assert (run.total_rows, run.duration) == (0, None)
    assert store.get_run(run.id) == run


def test_a_running_dataset_cannot_start_again(store: Store, dataset: str) -> None:
    run = store.start_run(dataset, "scheduled", None, None, T0)
    with pytest.raises(BusyError) as caught:
        store.start_run(dataset, "manual", None, None, T0 + timedelta(minutes=1))
    assert str(caught.value).startswith(
        f"dataset 'acme_leads' is already running (run {run.id}, started 2025-03-01 12:00:00 UTC"
    )
    assert [r.id for r in store.list_runs(dataset)] == [run.id]


def test_another_dataset_can_run_meanwhile(store: Store, dataset: str) -> None:
    store.create_dataset(DatasetSpec("acme_calls", "acme", "leads", {"lid": 2}))
    store.start_run(dataset, "manual", None, None, T0)
    assert store.start_run("acme_calls", "manual", None, None, T0).status == "running"


def test_a_finished_run_records_its_result(store: Store, dataset: str) -> None:
    run = store.start_run(dataset, "manual", None, None, T0)
    finished = store.finish_run(
        run.id,
        "success",
        T0 + timedelta(seconds=90),
        rows={"leads": 120, "leads__fields": 3},
        load_id="1740830400.1",
        schema_changes=["added column leads.utm_source"],
    )
    assert finished.status == "success"
    assert finished.finished_at == T0 + timedelta(seconds=90)
    assert (finished.total_rows, finished.duration) == (123, 90.0)
    assert finished.load_id == "1740830400.1"
    assert finished.schema_changes == ["added column leads.utm_source"]
    assert store.get_run(run.id) == finished
    assert store.start_run(dataset, "manual", None, None, T0 + timedelta(hours=1)).id > run.id


def test_a_failed_run_records_its_error(store: Store, dataset: str) -> None:
    run = store.start_run(dataset, "manual", None, None, T0)
    failed = store.finish_run(run.id, "failed", T0, error="AuthError: check the account")
    assert (failed.status, failed.error, failed.rows) == (
        "failed",
        "AuthError: check the account",
        {},
    )


def test_a_run_finishes_once(store: Store, dataset: str) -> None:
    run = store.start_run(dataset, "manual", None, None, T0)
    store.finish_run(run.id, "success", T0)
    with pytest.raises(ConflictError, match=r"already ended \(success\)"):
        store.finish_run(run.id, "failed", T0)


def test_finishing_an_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no run with id 42"):
        store.finish_run(42, "success", T0)
    with pytest.raises(NotFoundError, match="no run with id 42"):
        store.get_run(42)


@pytest.mark.parametrize("status", ["running", "ok", ""])
def test_a_run_cannot_finish_as_running_or_unknown(store: Store, dataset: str, status: str) -> None:
    run = store.start_run(dataset, "manual", None, None, T0)
    with pytest.raises(ValueError, match="finishes as one of"):
        store.finish_run(run.id, status, T0)


def test_an_unknown_trigger_is_a_bug(store: Store, dataset: str) -> None:
    with pytest.raises(ValueError, match="unknown trigger 'cron'"):
        store.start_run(dataset, "cron", None, None, T0)


def test_a_missing_dataset_cannot_run(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no dataset named 'ghost'"):
        store.start_run("ghost", "manual", None, None, T0)
    with pytest.raises(NotFoundError, match="no dataset named 'ghost'"):
        store.list_runs("ghost")


def test_runs_are_listed_newest_first(store: Store, dataset: str) -> None:
    ids = []
    for hour in range(4):
        now = T0 + timedelta(hours=hour)
        run = store.start_run(dataset, "scheduled", None, None, now)
        store.finish_run(run.id, "success", now + timedelta(minutes=1), rows={"leads": hour})
        ids.append(run.id)
    assert [r.id for r in store.list_runs(dataset)] == ids[::-1]
    assert [r.rows["leads"] for r in store.list_runs(dataset, limit=2)] == [3, 2]


def test_times_come_back_as_aware_utc(settings: Settings, dataset: str, store: Store) -> None:
    now = datetime(2025, 6, 1, 14, 30, tzinfo=PARIS)
    start = datetime(2025, 5, 25, tzinfo=PARIS)
    end = datetime(2025, 6, 1, tzinfo=PARIS)
    run = store.start_run(dataset, "backfill", start, end, now)
    store.close()
    with Store.open(settings) as reopened:
        read = reopened.get_run(run.id)
    assert read.started_at == now
    assert read.started_at.tzinfo is UTC
    assert read.started_at.hour == 12
    assert (read.window_start, read.window_end) == (start, end)
    assert read.window_start is not None
    assert read.window_start.tzinfo is UTC
    assert read.window_start.isoformat() == "2025-05-24T22:00:00+00:00"


@pytest.mark.parametrize(
    "window",
    [(datetime(2025, 1, 1), None), (None, datetime(2025, 1, 2))],  # noqa: DTZ001
)
def test_naive_windows_are_refused(
    store: Store, dataset: str, window: tuple[datetime | None, datetime | None]
) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.start_run(dataset, "backfill", *window, T0)


def test_a_naive_now_is_refused(store: Store, dataset: str) -> None:
    naive = datetime(2025, 1, 1, 12)  # noqa: DTZ001
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        store.start_run(dataset, "manual", None, None, naive)
    run = store.start_run(dataset, "manual", None, None, T0)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        store.finish_run(run.id, "success", naive)
    assert store.get_run(run.id).status == "running"


def test_a_naive_clock_is_refused(settings: Settings) -> None:
    with (
        Store.open(settings, clock=lambda: datetime(2025, 1, 1)) as store,  # noqa: DTZ001
        pytest.raises(ValueError, match="naive"),
    ):
        store.create_account("acme", "leadexec", {}, {})
