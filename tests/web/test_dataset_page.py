"""The dataset page: settings, schedule, schema, preview, History and its chart, exports,
delete and resume; what viewers may not do."""

from __future__ import annotations

import datetime as dt
import io
import re
import tempfile

import pyarrow.parquet as pq
import pytest

from leadferry.errors import LeadferryError
from leadferry.schedule import Schedule
from leadferry.service.datasets import set_schedule
from leadferry.settings import Settings
from leadferry.warehouse import Warehouse, warehouse_lock
from tests.conftest import API_KEY, NOW
from tests.web.conftest import building_acme_home
from tests.web.test_data_center import make_dataset


@pytest.fixture(scope="module")
def home_template(tmp_path_factory, migrated_home) -> Settings:
    """Dataset ``acme_leads`` (LeadExec leads of lid 271, last 2 days), run once for real."""
    with building_acme_home(tmp_path_factory, migrated_home) as (settings, store, run):
        make_dataset(store, "acme_leads", description="Leads for the call center", owner="Ops team")
        run("acme_leads")
    return settings


@pytest.fixture
def loaded(home_template, leadexec_url) -> str:
    """``acme_leads``, in a copy of its home (tests.conftest ``settings``); the simulator
    answers this test's runs."""
    return "acme_leads"


def count_rows(settings, table: str) -> int:
    return Warehouse(settings.warehouse_path).query(f"select count(*) from {table}").rows[0][0]


def history_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-testid="history-row".*?</tr>', page, re.S)


def chart_of(page: str) -> str:
    return re.search(r'<svg class="chart run-chart".*?</svg>', page, re.S).group(0)


def test_the_page_shows_settings_schedule_next_run_and_its_window(store, acme_account, viewer):
    make_dataset(store, "acme_leads", description="Leads for the call center", owner="Ops team")
    plan = Schedule.from_flags(daily="06:00", tz="America/Los_Angeles")
    set_schedule(store, "acme_leads", {"schedule": plan.as_json()}, NOW)

    page = viewer.get("/datasets/acme_leads")

    assert page.status_code == 200
    text = page.text
    assert "Leads for the call center" in text
    assert re.search(r'id="schedule">[^<]*06:00', text)
    assert "2026-11-24 06:00 PST" in re.search(r'id="next-run">(.*?)</dd>', text).group(1)
    # The next run is Tuesday 2026-11-24 in Los Angeles: two days back from it, Sunday and
    # Monday (not the window of a run started now, on Monday).
    assert "2026-11-22 .. 2026-11-23 (2 days)" in re.search(
        r'id="next-window">(.*?)</dd>', text
    ).group(1)
    assert "<code>lid=271</code>" in text
    assert re.search(r'id="setting-owner">Ops team<', text)
    assert re.search(r'id="setting-dates">last 2 days<', text)
    assert re.search(r'id="setting-update">replace<', text)
    assert 'data-status="never"' in text
    assert 'id="no-runs"' in text
    assert "Nothing loaded yet" in text


def test_history_lists_every_run_with_its_summary_and_a_chart_mark_per_run(
    run, store, settings, loaded, viewer
):
    store.update_account("acme", secrets={"api_key": "revoked-key"})
    with pytest.raises(LeadferryError):
        run(loaded, at=NOW + dt.timedelta(minutes=5))

    page = viewer.get(f"/datasets/{loaded}").text

    rows = history_rows(page)
    assert len(rows) == 2
    failed, succeeded = rows
    assert ">failed</span>" in failed
    assert "LeadExec rejected the API key for account acme" in failed
    assert ">success</span>" in succeeded
    assert "<td>manual</td>" in succeeded
    assert "2026-11-21 .. 2026-11-22 (2 days)" in succeeded
    assert f"{count_rows(settings, 'acme_leads.leads'):,}" in succeeded
    assert "2026-11-23 12:00 PST" in succeeded
    assert re.search(r'id="success-rate">50%<', page)
    chart = chart_of(page)
    assert chart.count('<g class="run-mark') == 2
    assert chart.count('<circle class="run-point"') == 3  # one per finished run, one in the legend
    assert "<title>Run #1 · manual · success" in chart
    assert "rows</text>" in chart
    assert "duration</text>" in chart
    assert "revoked-key" not in page
    assert API_KEY not in page


def test_the_preview_shows_the_first_rows_and_a_selector_for_the_other_table(
    settings, loaded, viewer
):
    page = viewer.get(f"/datasets/{loaded}").text

    assert page.count('data-testid="preview-row"') == 20
    assert '<option value="lead_sends"' in page
    assert '<option value="leads" selected' in page
    sends = viewer.htmx("GET", f"/datasets/{loaded}/preview?table=lead_sends")
    assert sends.status_code == 200
    assert 'data-table="lead_sends"' in sends.text
    assert "<html" not in sends.text
    expected = min(20, count_rows(settings, "acme_leads.lead_sends"))
    assert sends.text.count('data-testid="preview-row"') == expected
    without_js = viewer.get(f"/datasets/{loaded}?table=lead_sends").text
    assert '<option value="lead_sends" selected' in without_js
    assert viewer.get(f"/datasets/{loaded}?table=nope").status_code == 422


def test_the_schema_lists_each_table_with_its_columns_and_types(settings, loaded, viewer):
    page = viewer.get(f"/datasets/{loaded}").text
    columns = Warehouse(settings.warehouse_path).query(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'acme_leads' and table_name = 'leads' "
        "and column_name not like '\\_dlt%' escape '\\'"
    )

    schema = page[page.index('id="schema"') :]
    assert '<details class="schema-table" data-table="leads" open>' in schema
    assert 'data-table="lead_sends"' in schema
    for column, data_type in columns.rows:
        assert f"<tr><td><code>{column}</code></td><td>{data_type}</td></tr>" in schema
    assert "_dlt_load_id" not in schema


def test_export_csv_downloads_the_table_and_leaves_no_file_behind(
    settings, loaded, viewer, tmp_path, monkeypatch
):
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))

    answer = viewer.get(f"/datasets/{loaded}/export?format=csv")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="acme_leads_leads.csv"' in answer.headers["content-disposition"]
    lines = answer.text.splitlines()
    assert lines[0].startswith("uid,lead_source,date_added,")
    assert "_dlt_id" not in lines[0]
    assert len(lines) - 1 == count_rows(settings, "acme_leads.leads")
    assert list(spool.iterdir()) == []


def test_export_parquet_is_readable_by_pyarrow(settings, loaded, viewer):
    answer = viewer.get(f"/datasets/{loaded}/export?format=parquet&table=lead_sends")

    assert answer.status_code == 200
    table = pq.read_table(io.BytesIO(answer.content))
    assert table.num_rows == count_rows(settings, "acme_leads.lead_sends")
    assert 'filename="acme_leads_lead_sends.parquet"' in answer.headers["content-disposition"]


def test_export_refuses_an_unknown_format_and_a_dataset_without_data(store, acme_account, viewer):
    make_dataset(store, "acme_leads")
    assert viewer.get("/datasets/acme_leads/export?format=xlsx").status_code == 422
    assert viewer.get("/datasets/acme_leads/export?format=csv").status_code == 404


def test_run_now_refreshes_the_history_until_the_run_ends(app, store, acme_account, editor):
    make_dataset(store, "acme_leads")

    answer = editor.htmx("POST", "/datasets/acme_leads/run?view=history")

    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<section id="history"')
    assert 'hx-trigger="every 2s"' in answer.text
    status = re.search(r'<div id="dataset-status"[^>]*>', answer.text).group(0)
    assert 'hx-swap-oob="true"' in status
    app.state.scheduler.wait()
    after = editor.htmx("GET", "/datasets/acme_leads/history")
    assert "hx-trigger" not in after.text
    assert len(history_rows(after.text)) == 1
    assert 'data-status="success"' in after.text


def test_delete_asks_first_then_removes_the_dataset_and_optionally_its_data(
    store, settings, loaded, editor
):
    confirm = editor.get(f"/datasets/{loaded}/delete")
    assert confirm.status_code == 200
    assert 'name="drop_data"' in confirm.text

    answer = editor.send_form("POST", f"/datasets/{loaded}/delete", {"drop_data": "true"})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    assert "Deleted dataset acme_leads and its warehouse data." in editor.get("/").text
    assert store.list_datasets() == []
    assert Warehouse(settings.warehouse_path).tables("acme_leads") == []
    assert editor.get(f"/datasets/{loaded}").status_code == 404


def test_delete_keeps_the_warehouse_data_unless_asked(store, settings, loaded, editor):
    answer = editor.send_form("POST", f"/datasets/{loaded}/delete")

    assert answer.status_code == 303
    assert store.list_datasets() == []
    assert Warehouse(settings.warehouse_path).tables("acme_leads") == ["lead_sends", "leads"]


def test_a_failing_dataset_can_be_resumed(store, acme_account, editor):
    make_dataset(store, "acme_leads", when_failing="pause")
    plan = Schedule.from_flags(daily="06:00", tz="America/Los_Angeles")
    set_schedule(store, "acme_leads", {"schedule": plan.as_json()}, NOW)
    # The scheduler keeps the slot it had; a paused dataset shows neither it nor its window.
    store.set_state("acme_leads", failing=True)
    page = editor.get("/datasets/acme_leads").text
    assert 'data-status="failing"' in page
    assert "paused while failing" in page
    assert "none while paused" in page
    assert 'data-testid="paused"' in editor.get("/").text
    assert 'data-testid="resume"' in page

    answer = editor.send_form("POST", "/datasets/acme_leads/resume")

    assert answer.status_code == 303
    state = store.get_dataset("acme_leads").state
    assert state.failing is False
    assert state.next_run_at == dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)
    landing = editor.get("/datasets/acme_leads").text
    assert "Resumed acme_leads" in landing
    assert "2026-11-24 06:00 PST" in landing
    assert 'data-testid="resume"' not in landing


def test_viewers_see_exports_but_no_change_buttons(store, loaded, viewer):
    store.set_state(loaded, failing=True)
    page = viewer.get(f"/datasets/{loaded}").text

    assert 'id="export-csv"' in page
    assert 'id="export-parquet"' in page
    for control in ('id="run-now"', 'id="edit-dataset"', 'id="delete-dataset"', 'id="resume"'):
        assert control not in page


def test_viewers_are_refused_every_change(store, acme_account, viewer):
    make_dataset(store, "acme_leads")
    store.set_state("acme_leads", failing=True)
    changes = [
        ("POST", "/datasets/acme_leads/run"),
        ("POST", "/datasets/acme_leads/run?view=history"),
        ("POST", "/datasets/acme_leads/resume"),
        ("GET", "/datasets/acme_leads/delete"),
        ("POST", "/datasets/acme_leads/delete"),
    ]

    for method, path in changes:
        answer = viewer.send_form(method, path) if method == "POST" else viewer.get(path)
        assert answer.status_code == 403, path
        assert "this needs the editor role" in answer.text, path

    dataset = store.get_dataset("acme_leads")
    assert dataset.state.failing is True
    assert store.list_runs("acme_leads") == []


def test_a_busy_warehouse_still_shows_the_page(settings, loaded, viewer):
    # Shorter than the page's own wait (half a second), which it takes instead: the same path.
    settings.lock_timeout = 0.05
    with warehouse_lock(settings.warehouse_path, exclusive=True, timeout=1, holder="a test load"):
        page = viewer.get(f"/datasets/{loaded}")

    assert page.status_code == 200
    assert "a test load is writing to it" in page.text
    assert len(history_rows(page.text)) == 1


def test_an_unknown_dataset_is_not_found(viewer, acme_account):
    assert viewer.get("/datasets/nothing_here").status_code == 404
    assert viewer.htmx("GET", "/datasets/nothing_here/history").status_code == 404


def test_no_page_ever_shows_the_api_key(store, settings, loaded, admin, editor, viewer):
    store.set_state(loaded, failing=True)
    paths = [
        "/",
        "/?attention=1",
        f"/datasets/{loaded}",
        f"/datasets/{loaded}/history",
        f"/datasets/{loaded}/row",
        f"/datasets/{loaded}/preview?table=lead_sends",
        f"/datasets/{loaded}/delete",
    ]
    for browser in (admin, editor, viewer):
        for path in paths:
            answer = browser.get(path)
            assert answer.status_code in (200, 403), path
            assert API_KEY not in answer.text, path
