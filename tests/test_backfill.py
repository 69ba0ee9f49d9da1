"""Backfills in-process: the LeadExec simulator, real SQLite and a real DuckDB file."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from leadferry.backfill import plan_backfill, run_backfill
from leadferry.cli import app
from leadferry.dates import DateSelection, DateWindow, zone
from leadferry.errors import ConfigError, InvalidWindowError, RetryableAPIError
from leadferry.store import DatasetSpec
from tests.conftest import API_KEY, NOW, leadexec_app, serve_on_loopback

LA = zone("America/Los_Angeles")
FIRST, LAST = dt.date(2026, 11, 13), dt.date(2026, 11, 22)  # 10 days, the simulator's span
WHOLE = DateWindow.of_days(FIRST, LAST + dt.timedelta(days=1), LA)


def clock():
    return NOW


def make_dataset(store, update_method="partition"):
    spec = DatasetSpec(
        name="acme_leads",
        account="acme",
        report="leads",
        params={"lid": 271},
        date_selection=DateSelection(days_back=1),
        update_method=update_method,
    )
    return store.create_dataset(spec)


def backfill(store, settings, client, chunk_days=3, **kwargs):
    return run_backfill(
        store, settings, "acme_leads", FIRST, LAST, chunk_days, clock=clock, client=client, **kwargs
    )


def loaded(settings):
    connection = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return connection.sql("select count(*) from acme_leads.leads").fetchall()[0][0]
    finally:
        connection.close()


def backfill_runs(store):
    """(window days, status) of every backfill run, oldest first."""
    runs = [r for r in reversed(store.list_runs("acme_leads")) if r.trigger == "backfill"]
    return [
        ((r.window_start.astimezone(LA).date(), r.window_end.astimezone(LA).date()), r.status)
        for r in runs
    ]


@pytest.fixture(autouse=True)
def no_retries(settings):
    # A failing chunk only needs to fail, and fast.
    settings.http_retries = 0


def test_chunks_cover_the_window_exactly(store, acme):
    make_dataset(store)
    chunks = plan_backfill(store, "acme_leads", FIRST, LAST, 3, now=NOW)
    assert [len(chunk.days()) for chunk in chunks] == [3, 3, 3, 1]
    assert chunks[0].start == WHOLE.start
    assert chunks[-1].end == WHOLE.end
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:], strict=False))
    assert [day for chunk in chunks for day in chunk.days()] == WHOLE.days()


def test_a_backfill_loads_the_window_and_keeps_the_saved_settings(
    store, settings, acme, leadexec_api, leadexec_truth
):
    before = make_dataset(store)
    result = backfill(store, settings, leadexec_api)
    expected = leadexec_truth.count(271, WHOLE.start, WHOLE.end)
    assert expected > 0
    assert loaded(settings) == expected
    assert result.rows["leads"] == expected
    assert (result.done, result.skipped) == (4, 0)
    assert [status for _, status in backfill_runs(store)] == ["success"] * 4
    after = store.get_dataset("acme_leads")
    assert after.spec == before.spec
    assert after.updated_at == before.updated_at
    # Run again, it finds every chunk finished and runs nothing.
    again = backfill(store, settings, leadexec_api)
    assert (again.done, again.skipped) == (0, 4)
    assert len(backfill_runs(store)) == 4


def test_a_failed_chunk_stops_and_the_same_command_resumes_from_it(
    store, settings, acme, leadexec_truth
):
    make_dataset(store)
    vendor, simulator = leadexec_app()
    seen = []

    def outage_after_two_chunks(chunk):
        seen.append((chunk.number, chunk.status))
        if chunk.number == 2:
            vendor.fail_rate = 1.0  # the vendor goes down while the backfill runs

    with TestClient(simulator, base_url="http://leadexec.test") as client:
        with pytest.raises(RetryableAPIError) as failure:
            backfill(store, settings, client, on_chunk=outage_after_two_chunks)
        message = str(failure.value)
        assert "backfill of acme_leads stopped at chunk 3/4 (2026-11-19 .. 2026-11-21)" in message
        assert "run the same command again to resume" in message
        assert seen == [(1, "done"), (2, "done"), (3, "failed")]
        history = backfill_runs(store)
        assert [status for _, status in history] == ["success", "success", "failed"]
        assert "answered HTTP 5" in store.list_runs("acme_leads")[0].error

        vendor.fail_rate = 0.0
        result = backfill(store, settings, client)

    assert [c.status for c in result.chunks] == ["skipped", "skipped", "done", "done"]
    assert [c.run.id for c in result.chunks[:2]] == [1, 2]  # the runs that did them
    # Finished chunks got no second run; the failed one was run again, then the last.
    assert backfill_runs(store) == history + [
        ((dt.date(2026, 11, 19), dt.date(2026, 11, 22)), "success"),
        ((dt.date(2026, 11, 22), dt.date(2026, 11, 23)), "success"),
    ]
    assert loaded(settings) == leadexec_truth.count(271, WHOLE.start, WHOLE.end)


def test_replace_datasets_are_backfilled_only_in_one_chunk(
    store, settings, acme, leadexec_api, leadexec_truth
):
    make_dataset(store, update_method="replace")
    with pytest.raises(ConfigError, match="would keep only the last chunk.*--chunk-days 10"):
        backfill(store, settings, leadexec_api, chunk_days=3)
    assert store.list_runs("acme_leads") == []
    result = backfill(store, settings, leadexec_api, chunk_days=10)
    assert result.done == 1
    assert loaded(settings) == leadexec_truth.count(271, WHOLE.start, WHOLE.end)


@pytest.mark.parametrize(
    ("first", "last", "chunk_days", "error", "message"),
    [
        (LAST, FIRST, 3, InvalidWindowError, "--to \\(2026-11-13\\) is before --from"),
        (dt.date(2026, 11, 24), dt.date(2026, 11, 25), 3, InvalidWindowError, "--from: .*future"),
        (FIRST, dt.date(2026, 11, 24), 3, InvalidWindowError, "--to: 2026-11-24 is in the future"),
        (FIRST, LAST, 0, ConfigError, "--chunk-days: 0 is too small"),
    ],
)
def test_bad_inputs_are_refused_before_any_run(
    store, settings, acme, leadexec_api, first, last, chunk_days, error, message
):
    make_dataset(store)
    with pytest.raises(error, match=message):
        run_backfill(
            store, settings, "acme_leads", first, last, chunk_days, clock=clock, client=leadexec_api
        )
    assert store.list_runs("acme_leads") == []


# -- the command --------------------------------------------------------------------------------

cli = CliRunner()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--from", "2026-13-01", "--to", "2026-11-22"], "--from: '2026-13-01' is not a date"),
        (["--from", "2026-11-13", "--to", "2026-11-01"], "is before --from"),
        (["--from", "2026-11-13", "--to", "2026-11-22", "--chunk-days", "0"], "--chunk-days"),
        (["--from", "2026-11-13", "--to", "2026-11-22"], "no_such_dataset"),
    ],
)
def test_the_command_refuses_bad_input_with_one_line(settings, flags, message):
    result = cli.invoke(app, ["backfill", "no_such_dataset", *flags])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert message in lines[0]


@pytest.mark.e2e  # the command makes its own HTTP client: the simulator serves on loopback
def test_the_command_prints_a_line_per_chunk_and_a_summary(store, settings, leadexec_truth):
    _, simulator = leadexec_app()
    with serve_on_loopback(simulator) as url:
        store.create_account("acme", "leadexec", {"base_url": url + "/"}, {"api_key": API_KEY})
        make_dataset(store)
        flags = ["--from", "2026-11-20", "--to", "2026-11-22", "--chunk-days", "2"]
        first = cli.invoke(app, ["backfill", "acme_leads", *flags])
        again = cli.invoke(app, ["backfill", "acme_leads", *flags])
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0].startswith("acme_leads: chunk 1/2 2026-11-20 .. 2026-11-21: done, ")
    assert lines[1].startswith("acme_leads: chunk 2/2 2026-11-22: done, ")
    window = DateWindow.of_days(dt.date(2026, 11, 20), dt.date(2026, 11, 23), LA)
    expected = leadexec_truth.count(271, window.start, window.end)
    assert lines[2].startswith(
        f"acme_leads: backfilled 2026-11-20 .. 2026-11-22 in 2 chunks (2 done, 0 skipped): "
        f"leads: {expected:,}, "
    )
    assert again.stdout.splitlines()[0] == (
        "acme_leads: chunk 1/2 2026-11-20 .. 2026-11-21: skipped, already done by run 1"
    )
