"""run_dataset end to end in-process: the simulator, real SQLite and a real DuckDB file."""

from __future__ import annotations

import logging
import threading

import duckdb
import pytest
from starlette.testclient import TestClient

from leadferry.dates import DateSelection, today_in
from leadferry.errors import BusyError, ConfigError, ConnectorError, RetryableAPIError
from leadferry.run import run_dataset
from leadferry.run.load import ReadAhead
from leadferry.simulators import leadexec as leadexec_sim
from leadferry.store import DatasetSpec
from leadferry.warehouse import warehouse_lock
from tests.conftest import API_KEY, NOW, building_home, leadexec_app

LA = "America/Los_Angeles"


def clock():
    return NOW


def window_of(selection: dict):
    return DateSelection.parse(selection).resolve(LA, today_in(LA, NOW))


def make_dataset(store, name="acme_leads", **fields):
    spec = {"account": "acme", "report": "leads", "params": {"lid": 271}} | fields
    spec.setdefault("date_selection", DateSelection(days_back=7))
    return store.create_dataset(DatasetSpec(name=name, **spec))


def run(store, settings, client, name="acme_leads", **kwargs):
    return run_dataset(store, settings, name, clock=clock, client=client, **kwargs)


def sql(settings, query):
    connection = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return connection.sql(query).fetchall()
    finally:
        connection.close()


def count(settings, table="leads", schema="acme_leads"):
    return sql(settings, f"select count(*) from {schema}.{table}")[0][0]


def truth_count(truth, selection, lid=271):
    window = window_of(selection)
    return truth.count(lid, window.start, window.end)


@pytest.fixture
def failing_api(settings):
    """A LeadExec simulator that fails every call; runs give up at the first failure (no
    retry's backoff to sit out: these tests are about what a failure leaves)."""
    settings.http_retries = 0
    _, app = leadexec_app(fail_rate=1.0)
    with TestClient(app, base_url="http://leadexec.test") as client:
        yield client


@pytest.fixture(scope="module")
def home_template(tmp_path_factory, migrated_home):
    """Account ``acme`` and dataset ``acme_leads`` (replace, last 7 days), loaded once a module:
    the tests that start from a loaded dataset get a copy of this home (``settings``)."""
    _, app = leadexec_app()
    with (
        building_home(tmp_path_factory, migrated_home) as (settings, store),
        TestClient(app, base_url="http://leadexec.test") as client,
    ):
        store.create_account(
            "acme", "leadexec", {"base_url": "http://leadexec.test/"}, {"api_key": API_KEY}
        )
        make_dataset(store)
        assert run(store, settings, client).status == "success"
    return settings


@pytest.fixture
def loaded(home_template, store):
    """``acme_leads`` of account ``acme``, loaded once by a run that succeeded."""
    return "acme_leads"


@pytest.fixture(autouse=True)
def quick_retries(settings):
    # Backoff is tested on the connector; here failures only need to end fast.
    settings.http_retries = 1
    settings.http_backoff = 0.0


def test_replace_loads_the_window_and_records_the_run(
    store, settings, acme, leadexec_api, leadexec_truth
):
    make_dataset(store)
    result = run(store, settings, leadexec_api)
    expected = truth_count(leadexec_truth, {"days_back": 7})
    assert result.status == "success"
    assert result.rows["leads"] == expected
    assert result.rows["lead_sends"] == count(settings, "lead_sends")
    assert result.load_id
    assert count(settings) == expected
    window = window_of({"days_back": 7})
    assert (result.window_start, result.window_end) == (window.start, window.end)
    assert result.finished_at >= result.started_at
    # Replace again: same rows, not twice as many.
    run(store, settings, leadexec_api)
    assert count(settings) == expected
    assert [r.status for r in store.list_runs("acme_leads")] == ["success", "success"]


def test_columns_are_snake_case_and_typed_in_the_warehouse(settings, loaded):
    columns = dict(
        sql(
            settings,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'acme_leads' and table_name = 'leads'",
        )
    )
    assert columns["uid"] == "BIGINT"
    assert columns["date_added"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["is_valid"] == "BOOLEAN"
    assert columns["report_day"] == "DATE"
    assert columns["first_name"] == "VARCHAR"
    assert columns["price"].startswith("DECIMAL")


def test_a_failed_replace_leaves_the_previous_table_as_it_was(store, settings, loaded, failing_api):
    before = sql(settings, "select uid, _dlt_load_id from acme_leads.leads order by uid")
    with pytest.raises(RetryableAPIError):
        run(store, settings, failing_api)
    assert sql(settings, "select uid, _dlt_load_id from acme_leads.leads order by uid") == before
    last = store.list_runs("acme_leads")[0]
    assert last.status == "failed"
    assert "answered HTTP 5" in last.error
    assert API_KEY not in last.error


def test_a_run_whose_load_cannot_get_the_warehouse_fails_cleanly(
    store, settings, loaded, leadexec_api
):
    before = count(settings)
    settings.writer_timeout = 0.2
    with (
        warehouse_lock(settings.warehouse_path, exclusive=True, timeout=1, holder="a test"),
        pytest.raises(BusyError, match="the warehouse is busy: a test is writing to it"),
    ):
        run(store, settings, leadexec_api)
    assert count(settings) == before
    assert store.list_runs("acme_leads")[0].status == "failed"
    # The aborted package is not loaded by surprise on the next run.
    run(store, settings, leadexec_api)
    assert count(settings) == before


def test_a_run_leaves_no_files_of_dlt_behind_whether_it_succeeds_or_fails(
    store, settings, loaded, failing_api
):
    assert not (settings.pipelines_dir / "acme_leads").exists()
    with pytest.raises(RetryableAPIError):
        run(store, settings, failing_api)
    assert not (settings.pipelines_dir / "acme_leads").exists()


def test_a_package_a_killed_run_left_is_never_applied(store, settings, loaded, leadexec_api):
    import dlt
    import pyarrow as pa

    from leadferry.destination import configure_dlt, warehouse_destination

    before = sql(settings, "select uid, _dlt_load_id from acme_leads.leads order by uid")
    # What a run killed between dlt's extract and the apply leaves: an extracted package (and,
    # from a version that ran dlt's normalise, a normalised one).
    configure_dlt(settings)
    left = dlt.pipeline(
        pipeline_name="acme_leads",
        destination=warehouse_destination(settings.warehouse_path),
        dataset_name="acme_leads",
        pipelines_dir=str(settings.pipelines_dir),
    )
    left.extract(dlt.resource([pa.table({"uid": [-1]})], name="leads"))
    left.normalize()
    left.extract(dlt.resource([pa.table({"uid": [-2]})], name="leads"))
    assert left.list_normalized_load_packages()
    assert left.list_extracted_load_packages()
    run(store, settings, leadexec_api)
    after = sql(settings, "select uid from acme_leads.leads order by uid")
    assert [uid for uid, _load in before] == [uid for (uid,) in after]
    assert not (settings.pipelines_dir / "acme_leads").exists()


def test_truncated_answers_fail_the_run_and_keep_the_warehouse(store, settings, loaded):
    before = count(settings)
    _, app = leadexec_app(truncate_rate=1.0)
    with (
        TestClient(app, base_url="http://leadexec.test") as truncating,
        pytest.raises(RetryableAPIError, match="cut short"),
    ):
        run(store, settings, truncating)
    assert count(settings) == before
    assert "cut short" in store.list_runs("acme_leads")[0].error


def test_append_adds_rows_each_run(store, settings, acme, leadexec_api, leadexec_truth):
    make_dataset(store, update_method="append", date_selection=DateSelection())
    run(store, settings, leadexec_api)
    run(store, settings, leadexec_api)
    assert count(settings) == 2 * truth_count(leadexec_truth, {})


def test_merge_never_duplicates_when_windows_repeat_or_overlap(
    store, settings, acme, leadexec_api, leadexec_truth
):
    make_dataset(store, update_method="merge", date_selection=DateSelection(days_back=3))
    run(store, settings, leadexec_api)
    run(store, settings, leadexec_api)
    assert count(settings) == truth_count(leadexec_truth, {"days_back": 3})
    store.update_dataset("acme_leads", date_selection=DateSelection(days_back=5))
    run(store, settings, leadexec_api)
    expected = truth_count(leadexec_truth, {"days_back": 5})
    assert count(settings) == expected
    assert sql(settings, "select count(distinct uid) from acme_leads.leads")[0][0] == expected
    sends = sql(
        settings,
        "select count(*), count(distinct (lead_uid, client_uid, date_sent)) "
        "from acme_leads.lead_sends",
    )[0]
    assert sends[0] == sends[1], "sends of re-loaded leads must not be duplicated"


def test_merge_on_a_missing_column_is_named(store, settings, acme, leadexec_api):
    make_dataset(store, update_method="merge", merge_key="no_such_column")
    with pytest.raises(ConfigError, match="merge key no_such_column is not a column of leads"):
        run(store, settings, leadexec_api)
    assert store.list_runs("acme_leads")[0].status == "failed"


def test_partition_replaces_exactly_the_windows_days(store, settings, acme, leadexec_api):
    make_dataset(store, update_method="partition", date_selection=DateSelection(days_back=7))
    run(store, settings, leadexec_api)
    per_day = dict(sql(settings, "select report_day, count(*) from acme_leads.leads group by 1"))
    assert len(per_day) == 7
    # The vendor's data changes (another seed), and only the last 2 days are reloaded;
    # the vendor now has leads for just the last day, so the day before must end up empty.
    config = leadexec_sim.Settings(leads=2_000, days=1, seed=99, api_key=[API_KEY], lid=[271])
    with TestClient(
        leadexec_sim.create_app(config, now=NOW), base_url="http://leadexec.test"
    ) as changed:
        store.update_dataset("acme_leads", date_selection=DateSelection(days_back=2))
        run(store, settings, changed)
        reloaded = leadexec_sim.Simulation(config, now=NOW)
        window = window_of({"days_back": 2})
        vendor_now = reloaded.count(271, window.start, window.end)
    after = dict(sql(settings, "select report_day, count(*) from acme_leads.leads group by 1"))
    days = sorted(per_day)
    for day in days[:-2]:
        assert after[day] == per_day[day], f"{day} is outside the window and must not change"
    assert sum(after.get(day, 0) for day in days[-2:]) == vendor_now
    assert after.get(days[-2], 0) + after.get(days[-1], 0) == vendor_now
    orphans = sql(
        settings,
        "select count(*) from acme_leads.lead_sends where lead_uid not in "
        "(select uid from acme_leads.leads)",
    )[0][0]
    assert orphans == 0


def test_schema_changes_add_columns_and_are_recorded(store, settings, acme, leadexec_api):
    make_dataset(store, update_method="append")
    first = run(store, settings, leadexec_api)
    assert first.schema_changes == []
    before = {
        c
        for (c,) in sql(
            settings,
            "select column_name from information_schema.columns where table_name = 'leads'",
        )
    }
    store.update_dataset("acme_leads", params={"lid": 272})
    second = run(store, settings, leadexec_api)
    after = {
        c
        for (c,) in sql(
            settings,
            "select column_name from information_schema.columns where table_name = 'leads'",
        )
    }
    assert before < after, "lead type 272 brings fields 271 does not have"
    assert second.schema_changes
    assert second.schema_changes[0].startswith("leads: new column")
    assert store.list_runs("acme_leads")[0].schema_changes == second.schema_changes


def test_a_wrong_key_fails_at_once_and_is_recorded(store, settings, leadexec_api):
    store.create_account(
        "acme", "leadexec", {"base_url": "http://leadexec.test/"}, {"api_key": "not-the-key"}
    )
    make_dataset(store)
    with pytest.raises(ConnectorError, match="^LeadExec rejected the API key for account acme$"):
        run(store, settings, leadexec_api)
    last = store.list_runs("acme_leads")[0]
    assert last.error == "LeadExec rejected the API key for account acme"


def test_a_dataset_never_runs_twice_at_once(store, settings, acme, leadexec_api):
    make_dataset(store)
    running = store.start_run("acme_leads", "manual", None, None, NOW)
    with pytest.raises(BusyError, match="already running"):
        run(store, settings, leadexec_api)
    store.finish_run(running.id, "success", NOW)


def test_two_datasets_can_run_at_once(store, settings, acme, leadexec_api, leadexec_truth):
    make_dataset(store, "first_leads")
    make_dataset(store, "second_leads", params={"lid": 272})
    errors = []

    def go(name):
        try:
            run(store, settings, leadexec_api, name=name)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(n,)) for n in ("first_leads", "second_leads")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(settings, schema="first_leads") == truth_count(leadexec_truth, {"days_back": 7})
    assert count(settings, schema="second_leads") == truth_count(
        leadexec_truth, {"days_back": 7}, lid=272
    )


def test_the_key_never_reaches_logs_history_or_metadata(
    store, settings, acme, leadexec_api, failing_api, caplog
):
    caplog.set_level(logging.DEBUG)
    make_dataset(store)
    run(store, settings, leadexec_api)
    with pytest.raises(RetryableAPIError):
        run(store, settings, failing_api)
    assert API_KEY not in caplog.text
    assert all(API_KEY not in (r.error or "") for r in store.list_runs("acme_leads"))
    assert API_KEY.encode() not in (settings.home / "leadferry.sqlite").read_bytes()
    for path in settings.pipelines_dir.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


# -- reading ahead --------------------------------------------------------------------------------


def test_read_ahead_gives_every_item_in_order_then_the_sources_error():
    def source():
        yield from range(50)
        raise ConnectorError("the vendor went away")

    got = []
    with ReadAhead(source(), most=3) as items, pytest.raises(ConnectorError, match="went away"):
        got.extend(items)
    assert got == list(range(50))


def test_read_ahead_stops_and_closes_its_source_when_the_reader_leaves():
    produced, closed = [], threading.Event()

    def source():
        try:
            for number in range(10_000):
                produced.append(number)
                yield number
        finally:
            closed.set()

    with ReadAhead(source(), most=2) as items:
        assert next(items) == 0
    assert closed.is_set()
    assert len(produced) <= 5  # the one read, two queued, and the one it was offering
