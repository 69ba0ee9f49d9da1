"""Backfill, Cancel and a running run's live progress, from the dataset page, the Data Center
and the REST API: the pages queue work on the service's workers, which report back through
the store."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from leadferry.dates import DateSelection
from leadferry.errors import RunCancelledError
from leadferry.jobs import ProgressRecorder
from leadferry.run import run_dataset
from leadferry.store import RunProgress
from tests.conftest import NOW
from tests.web.conftest import api_client
from tests.web.test_data_center import make_dataset, row_of


def flash_of(browser, url: str) -> str:
    """The flash message the page at *url* shows after a redirect."""
    return re.search(r'class="flash [a-z]+"[^>]*>(.*?)</p>', browser.get(url).text, re.S).group(1)


def start_running(store, name: str, pages_done: int, pages_total: int | None, rows: int):
    """A run of *name* that a worker has begun and reported on, as ``serve``'s would be."""
    run = store.start_run(name, "manual", None, None, NOW)
    store.record_progress(name, RunProgress(pages_done, pages_total, rows))
    return run


def test_a_running_run_shows_how_far_it_got_on_its_page_and_the_data_center(
    app, store, acme_account, editor, viewer
):
    make_dataset(store, "acme_leads")
    start_running(store, "acme_leads", 3, 10, 1234)

    page = editor.get("/datasets/acme_leads").text
    status = re.search(r'id="dataset-status".*?</div>', page, re.S).group(0)
    assert "page 3 of 10, 1,234 rows so far" in status
    assert 'data-testid="cancel-run"' in status
    line = row_of(viewer.get("/").text, "acme_leads")
    assert "page 3 of 10, 1,234 rows so far" in line
    assert 'hx-trigger="every 2s"' in line  # the line polls until the run ends
    assert 'data-testid="cancel-run"' not in viewer.get("/datasets/acme_leads").text
    answer = api_client(app, store, "vera").get("/api/v1/datasets/acme_leads/runs")
    assert answer.json()["data"][0]["progress"] == {
        "pages_done": 3,
        "pages_total": 10,
        "rows": 1234,
    }


def test_progress_without_a_total_names_the_pages_fetched(store, acme_account, viewer):
    make_dataset(store, "acme_leads")
    start_running(store, "acme_leads", 2, None, 500)

    assert "page 2, 500 rows so far" in viewer.get("/datasets/acme_leads").text


def test_cancel_asks_the_running_run_to_stop_at_its_next_page(store, acme_account, editor):
    make_dataset(store, "acme_leads")
    start_running(store, "acme_leads", 1, 4, 250)

    answer = editor.send_form("POST", "/datasets/acme_leads/cancel")

    assert answer.status_code == 303
    assert "stops at its next page" in flash_of(editor, answer.headers["location"])
    assert store.list_runs("acme_leads")[0].cancel_requested == "eddie"
    recorder = ProgressRecorder(store, "acme_leads", every=0)
    with pytest.raises(RunCancelledError, match="stopped by eddie at page 2 of 4"):
        recorder(RunProgress(2, 4, 500))  # the worker's next page


def test_cancel_with_nothing_running_says_so_and_viewers_may_not(app, store, acme_account, editor):
    make_dataset(store, "acme_leads")

    refused = editor.send_form("POST", "/datasets/acme_leads/cancel")

    assert refused.status_code == 409
    assert "dataset acme_leads is not running: there is nothing to stop" in refused.text
    viewer_api = api_client(app, store, "vera")
    assert viewer_api.post("/api/v1/datasets/acme_leads/cancel").status_code == 403
    editor_api = api_client(app, store, "eddie")
    assert editor_api.post("/api/v1/datasets/acme_leads/cancel").json() == {
        "detail": "dataset acme_leads is not running: there is nothing to stop"
    }


def test_a_run_stopped_mid_fetch_is_recorded_failed_by_whom_and_loads_nothing(
    store, settings, acme_account, vendor_client
):
    make_dataset(store, "acme_leads")
    recorder = ProgressRecorder(store, "acme_leads", every=0)

    def cancel_on_the_first_page(state):
        if state.pages_done == 1:  # someone presses Cancel while the first page arrives
            store.request_cancel("acme_leads", "eddie")
        recorder(state)

    with pytest.raises(RunCancelledError):
        run_dataset(
            store,
            settings,
            "acme_leads",
            clock=lambda: NOW,
            client=vendor_client,
            progress=cancel_on_the_first_page,
        )

    run = store.list_runs("acme_leads")[0]
    assert run.status == "failed"
    assert run.error.startswith("stopped by eddie at page 1")
    assert not settings.warehouse_path.exists()  # nothing reached the warehouse


def test_backfill_from_the_dataset_page_runs_its_chunks_on_the_workers(
    app, store, acme_account, editor
):
    make_dataset(store, "acme_leads", update_method="partition")
    page = editor.get("/datasets/acme_leads").text
    assert 'id="backfill-form"' in page

    answer = editor.send_form(
        "POST",
        "/datasets/acme_leads/backfill",
        {"first": "2026-11-16", "last": "2026-11-20", "chunk_days": "2"},
    )

    assert answer.status_code == 303
    app.state.scheduler.wait()
    message = flash_of(editor, answer.headers["location"])
    assert "Backfill of acme_leads queued: 2026-11-16 .. 2026-11-20 in 3 runs" in message
    runs = store.list_runs("acme_leads")
    assert [(r.trigger, r.status) for r in runs] == [("backfill", "success")] * 3
    zone = dt.timezone(dt.timedelta(hours=-8))  # the account's America/Los_Angeles in November
    assert [r.window_start.astimezone(zone).date().isoformat() for r in reversed(runs)] == [
        "2026-11-16",
        "2026-11-18",
        "2026-11-20",
    ]
    assert store.get_dataset("acme_leads").date_selection == DateSelection(days_back=2)  # unchanged


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"first": "2026-11-10", "last": "2026-11-20", "chunk_days": "2"},
            "uses the replace update method, so backfilling it in 6 chunks",
        ),
        ({"first": "2026-11-20", "last": "2026-11-10"}, "is before --from"),
        ({"first": "2026-11-20", "last": "2026-12-20"}, "is in the future"),
    ],
)
def test_a_backfill_that_cannot_run_says_why(store, acme_account, editor, fields, message):
    make_dataset(store, "acme_leads")

    refused = editor.send_form("POST", "/datasets/acme_leads/backfill", fields)

    assert refused.status_code == 422
    assert message in refused.text
    assert store.list_runs("acme_leads") == []


def test_the_api_queues_a_backfill_and_viewers_may_not(app, store, acme_account):
    make_dataset(store, "acme_leads", update_method="merge")
    body = {"first": "2026-11-19", "last": "2026-11-21", "chunk_days": 2}

    assert (
        api_client(app, store, "vera").post("/api/v1/datasets/acme_leads/backfills", json=body)
    ).status_code == 403
    answer = api_client(app, store, "eddie").post(
        "/api/v1/datasets/acme_leads/backfills", json=body
    )

    assert answer.status_code == 202
    assert answer.json() == {
        "dataset": "acme_leads",
        "trigger": "backfill",
        "status": "queued",
        "chunks": ["2026-11-19 .. 2026-11-20", "2026-11-21"],
        "history": "/api/v1/datasets/acme_leads/runs",
    }
    app.state.scheduler.wait()
    assert [r.trigger for r in store.list_runs("acme_leads")] == ["backfill", "backfill"]


def test_viewers_get_no_backfill_form(store, acme_account, viewer):
    make_dataset(store, "acme_leads")

    assert 'id="backfill-form"' not in viewer.get("/datasets/acme_leads").text
