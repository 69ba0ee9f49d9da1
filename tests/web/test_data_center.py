"""The Data Center: every dataset with its status, rows and next run; the attention filter;
Run Now."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from leadferry.dates import DateSelection
from leadferry.errors import LeadferryError
from leadferry.schedule import Schedule
from leadferry.service.datasets import create_dataset, set_schedule
from leadferry.store import DatasetSpec
from leadferry.warehouse import Warehouse, warehouse_lock
from tests.conftest import API_KEY, NOW


def make_dataset(store, name: str, account: str = "acme", **fields):
    spec = DatasetSpec(
        name=name,
        account=account,
        report="leads",
        params={"lid": 271},
        date_selection=DateSelection(days_back=2),
        **fields,
    )
    return create_dataset(store, spec, NOW)


def row_of(page: str, name: str) -> str:
    """The ``<tr>`` of dataset *name* in a Data Center page."""
    found = re.search(rf'<tr id="row-{name}".*?</tr>', page, re.S)
    assert found, f"no row for {name}"
    return found.group(0)


def status_in(html: str) -> str:
    return re.search(r'data-status="([a-z]+)"', html).group(1)


@pytest.fixture
def broken_account(store, leadexec_url):
    """An account whose API key the simulator refuses: its runs fail."""
    return store.create_account(
        "broken", "leadexec", {"base_url": f"{leadexec_url}/"}, {"api_key": "not-the-key"}
    )


def test_an_empty_data_center_points_to_add_dataset(editor, viewer):
    page = editor.get("/")
    assert page.status_code == 200
    assert 'id="no-datasets"' in page.text
    assert 'href="/datasets/new"' in page.text
    seen_by_viewer = viewer.get("/").text
    assert 'id="no-datasets"' in seen_by_viewer
    assert 'href="/datasets/new"' not in seen_by_viewer


def test_the_data_center_needs_a_login(anonymous):
    answer = anonymous.get("/")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


def test_each_dataset_shows_connector_report_status_last_success_next_run_and_rows(
    run, store, settings, acme_account, viewer
):
    make_dataset(store, "acme_leads", description="Leads for the call center")
    make_dataset(store, "acme_later")
    set_schedule(
        store,
        "acme_later",
        {"schedule": Schedule.from_flags(daily="06:00", tz="America/Los_Angeles").as_json()},
        NOW,
    )
    done = run("acme_leads")
    counted = Warehouse(settings.warehouse_path).query("select count(*) from acme_leads.leads")

    page = viewer.get("/").text

    loaded = row_of(page, "acme_leads")
    assert ">LeadExec</td>" in loaded
    assert ">Leads</td>" in loaded
    assert status_in(loaded) == "success"
    assert ">success</span>" in loaded
    assert "2026-11-23 12:00 PST" in loaded  # the last success, in the account's zone
    assert f"{counted.rows[0][0]:,}" in loaded
    assert counted.rows[0][0] == done.rows["leads"] > 0
    assert 'href="/datasets/acme_leads"' in loaded
    waiting = row_of(page, "acme_later")
    assert status_in(waiting) == "never"
    assert "never run" in waiting
    assert "2026-11-24 06:00 PST" in waiting  # the next run, in the dataset's zone
    assert "manual" in loaded
    assert API_KEY not in page


def test_statuses_follow_failures_failing_marks_and_stale_limits(
    run, store, settings, acme_account, broken_account, viewer
):
    make_dataset(store, "bad_key", account="broken")
    with pytest.raises(LeadferryError):
        run("bad_key")
    make_dataset(store, "given_up")
    store.set_state("given_up", failing=True)
    make_dataset(store, "old_news", stale_after=60)
    earlier = store.start_run("old_news", "manual", None, None, NOW - dt.timedelta(hours=3))
    store.finish_run(earlier.id, "success", NOW - dt.timedelta(hours=3), rows={"leads": 5})
    make_dataset(store, "fresh", stale_after=600)
    recent = store.start_run("fresh", "manual", None, None, NOW - dt.timedelta(hours=1))
    store.finish_run(recent.id, "success", NOW - dt.timedelta(hours=1), rows={"leads": 7})

    page = viewer.get("/").text

    assert status_in(row_of(page, "bad_key")) == "failed"
    assert status_in(row_of(page, "given_up")) == "failing"
    assert status_in(row_of(page, "old_news")) == "stale"
    assert status_in(row_of(page, "fresh")) == "success"
    # Without a warehouse table, rows are what the last run loaded.
    assert ">5</td>" in row_of(page, "old_news")


def test_the_attention_filter_keeps_what_needs_attention_with_and_without_htmx(
    run, store, settings, acme_account, broken_account, viewer
):
    make_dataset(store, "bad_key", account="broken")
    with pytest.raises(LeadferryError):
        run("bad_key")
    make_dataset(store, "never_ran")
    make_dataset(store, "all_good")
    good = store.start_run("all_good", "manual", None, None, NOW)
    store.finish_run(good.id, "success", NOW, rows={"leads": 3})

    everything = viewer.get("/").text
    assert 'aria-checked="false"' in everything
    assert "Needs attention (2)" in everything

    plain = viewer.get("/?attention=1")
    swapped = viewer.get("/?attention=1", headers={"HX-Request": "true"})

    for page in (plain.text, swapped.text):
        assert 'data-dataset="bad_key"' in page
        assert 'data-dataset="never_ran"' in page
        assert 'data-dataset="all_good"' not in page
        assert "2 of 3 datasets need attention" in page
        assert 'aria-checked="true"' in page
    assert "<html" in plain.text
    assert "<html" not in swapped.text
    assert 'id="datasets"' in swapped.text
    assert swapped.headers["vary"] == "HX-Request"


def test_run_now_shows_queued_then_the_line_polls_until_the_run_ends(
    app, store, settings, acme_account, editor
):
    make_dataset(store, "acme_leads")

    answer = editor.htmx("POST", "/datasets/acme_leads/run?view=row")

    assert answer.status_code == 200
    assert answer.text.lstrip().startswith("<tr")
    assert 'hx-trigger="every 2s"' in answer.text
    assert status_in(answer.text) in ("queued", "running")
    assert 'hx-get="/datasets/acme_leads/row?polling=1"' in answer.text
    app.state.scheduler.wait()
    after = editor.htmx("GET", "/datasets/acme_leads/row?polling=1")
    assert "hx-trigger" not in after.text
    assert status_in(after.text) == "success"
    # The last poll asks the list to reload, so its counts and filter follow.
    assert after.headers["HX-Trigger"] == "datasets-changed"
    assert 'hx-trigger="datasets-changed from:body"' in editor.get("/").text
    assert store.list_runs("acme_leads")[0].trigger == "manual"


def test_run_now_without_javascript_redirects_to_the_dataset_page(
    app, store, settings, acme_account, editor
):
    make_dataset(store, "acme_leads")

    answer = editor.send_form("POST", "/datasets/acme_leads/run")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/datasets/acme_leads"
    app.state.scheduler.wait()
    landing = editor.get("/datasets/acme_leads")
    assert "Run of acme_leads queued." in landing.text
    assert "Run of acme_leads queued." not in editor.get("/datasets/acme_leads").text


def test_viewers_see_no_run_button_and_cannot_run(store, settings, acme_account, viewer, editor):
    make_dataset(store, "acme_leads")
    assert 'data-testid="run-now"' in editor.get("/").text
    assert 'data-testid="run-now"' not in viewer.get("/").text

    refused = viewer.htmx("POST", "/datasets/acme_leads/run?view=row")

    assert refused.status_code == 403
    assert store.list_runs("acme_leads") == []


def test_a_busy_warehouse_shows_the_last_runs_rows(run, store, settings, acme_account, viewer):
    make_dataset(store, "acme_leads")
    done = run("acme_leads")
    # A run settled after its process died recorded what it loaded, not its table's rows.
    make_dataset(store, "acme_settled")
    settled = store.start_run("acme_settled", "manual", None, None, done.started_at)
    store.finish_run(settled.id, "success", done.started_at, rows={"leads": 4321})

    # Shorter than the page's own wait (half a second), which it takes instead: the same path.
    settings.lock_timeout = 0.05
    with warehouse_lock(settings.warehouse_path, exclusive=True, timeout=1, holder="a test"):
        page = viewer.get("/")

    assert page.status_code == 200
    line = row_of(page.text, "acme_leads")
    assert f"{done.rows['leads']:,}" in line
    assert 'title="loaded by the last run"' not in line  # its run counted its table
    assert store.get_dataset("acme_leads").table_rows == done.rows["leads"]  # replaced
    line = row_of(page.text, "acme_settled")
    assert "4,321" in line
    assert 'title="loaded by the last run"' in line


def test_an_unknown_page_is_an_html_404_and_an_unknown_api_path_json(viewer):
    page = viewer.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text
    assert "There is no page at /no/such/page." in page.text
    assert "Log out" in page.text  # the nav of the logged-in user
    assert 'href="/"' in page.text
    api = viewer.get("/api/v1/no/such/thing")
    assert api.status_code == 404
    assert api.json() == {"detail": "Not Found"}


def test_a_display_name_shows_beside_the_name_on_the_list_and_the_page(store, acme_account, viewer):
    make_dataset(store, "acme_leads", display_name="Spring <leads>")
    make_dataset(store, "acme_other")

    line = row_of(viewer.get("/?q=spring").text, "acme_leads")
    assert 'class="dataset-link">Spring &lt;leads&gt;</a>' in line
    assert '<small class="schema-name"' in line
    assert "acme_other" not in viewer.get("/?q=spring").text
    assert "schema-name" not in row_of(viewer.get("/").text, "acme_other")
    page = viewer.get("/datasets/acme_leads").text
    assert '<h1 id="dataset-name">Spring &lt;leads&gt;</h1>' in page
    assert re.search(r'id="dataset-schema"[^>]*>acme_leads<', page)
