"""Helpers shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadferry.store import DatasetSpec, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def check_list_statuses(store: Store, now: datetime) -> None:
    """The Data Center's list query judges each status in SQL as ``judge`` does (stale by each
    dataset's own limit at *now*), filters by status, sorts with the datasets without a value
    last, pages and counts: *store* is empty, any backend."""
    store.create_account("acme", "leadexec", {}, {"api_key": "k3y-0123456789"})
    store.create_account("calls", "avidtrak", {}, {"api_key": "k3y-0123456789"})
    datasets = {
        "fresh": ("acme", 60, [("success", 30)]),
        "old": ("acme", 60, [("success", 120)]),
        "patient": ("acme", 180, [("success", 120)]),
        "broke": ("acme", None, [("success", 300), ("failed", 10)]),
        "idle": ("calls", None, []),
        "busy": ("calls", None, [("success", 90), ("running", 0)]),
    }
    for name, (account, stale_after, runs) in datasets.items():
        report = "leads" if account == "acme" else "geographical_data"
        store.create_dataset(DatasetSpec(name, account, report, {}, stale_after=stale_after))
        for status, minutes_ago in runs:
            run = store.start_run(name, "manual", None, None, now - timedelta(minutes=minutes_ago))
            if status != "running":
                store.finish_run(run.id, status, now - timedelta(minutes=minutes_ago))
    listed = store.list_statuses(now)
    judged = {line.name: (line.last_status, line.stale) for line in listed.lines}
    assert [line.name for line in listed.lines] == sorted(datasets)
    assert judged == {
        "broke": ("failed", False),
        "busy": ("running", False),
        "fresh": ("success", False),
        "idle": (None, False),
        "old": ("success", True),
        "patient": ("success", False),
    }
    assert (listed.total, listed.flagged, listed.datasets) == (6, 3, 6)
    assert [line.name for line in store.list_statuses(now, status="stale").lines] == ["old"]
    attention = store.list_statuses(now, status="attention", connector="leadexec")
    assert ([line.name for line in attention.lines], attention.total) == (["broke", "old"], 2)
    by_status = store.list_statuses(now, sort="status")
    assert [line.name for line in by_status.lines] == [
        "busy", "broke", "old", "idle", "fresh", "patient"
    ]  # fmt: skip
    newest = store.list_statuses(now, sort="-last_success", offset=1, limit=3)
    assert [line.name for line in newest.lines] == ["busy", "old", "patient"]
    assert (newest.total, newest.datasets) == (6, 6)
    last = store.list_statuses(now, sort="-last_success", offset=5)
    assert [line.name for line in last.lines] == ["idle"]
    filtered = store.list_statuses(now, search="TIE", account="acme")
    assert ([line.name for line in filtered.lines], filtered.datasets) == (["patient"], 6)
