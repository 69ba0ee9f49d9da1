"""Incremental datasets: a cursor per dataset, a lookback, merge on the key."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import duckdb
import pytest
from starlette.testclient import TestClient

from leadferry.dates import DateSelection
from leadferry.errors import ConfigError
from leadferry.run import run_dataset
from leadferry.simulators import leadexec as leadexec_sim
from leadferry.simulators import salesexec as salesexec_sim
from leadferry.store import DatasetSpec
from tests.conftest import NOW, SALES_PASSWORD, SALES_USER, leadexec_app, salesexec_app

LA = ZoneInfo("America/Los_Angeles")


def count(settings, sql):
    connection = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return connection.sql(sql).fetchall()[0][0]
    finally:
        connection.close()


TRUSTED_FILTERS = [
    pytest.param([], id="as-specified"),
    pytest.param([leadexec_sim.Variant.BAD_KEY_200], id="bad-key-200"),
    pytest.param([leadexec_sim.Variant.DATES_REQUIRED], id="dates-required"),
]


@pytest.mark.parametrize("variant", TRUSTED_FILTERS)
def test_leadexec_loads_only_leads_changed_since_the_cursor(store, settings, acme, variant):
    config, app = leadexec_app(variant=variant)
    truth = leadexec_sim.Simulation(config, now=NOW)
    incremental = {"lookback_minutes": 30, "start": "2026-11-20"}
    store.create_dataset(DatasetSpec(name="changes", account="acme", report="leads",
                                     params={"lid": 271}, update_method="merge",
                                     incremental=incremental))  # fmt: skip
    every = list(truth.leads(271))

    def changed_since(moment: dt.datetime) -> int:
        wall = moment.astimezone(LA).replace(tzinfo=None)
        return sum(1 for lead in every if lead["LastUpdated"] >= wall)

    with TestClient(app, base_url="http://leadexec.test") as client:
        first = run_dataset(store, settings, "changes", clock=lambda: NOW, client=client)
        start = dt.datetime(2026, 11, 20, tzinfo=LA)
        assert first.rows["leads"] == changed_since(start)
        assert first.window_start == start
        cursor = store.get_dataset("changes").state.cursor
        newest = max(lead["LastUpdated"] for lead in every).replace(tzinfo=LA)
        assert cursor == newest
        second = run_dataset(store, settings, "changes", clock=lambda: NOW, client=client)
    since = cursor - dt.timedelta(minutes=30)
    assert second.window_start == since
    assert second.rows["leads"] == changed_since(since)
    assert second.rows["leads"] < first.rows["leads"]
    assert count(settings, "select count(*) from changes.leads") == first.rows["leads"]
    assert count(settings, "select count(distinct uid) from changes.leads") == first.rows["leads"]
    assert first.error is None
    assert second.error is None


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        (leadexec_sim.Variant.XML_WITHOUT_LAST_UPDATED, "the answers carry no <LastUpdated>"),
        (leadexec_sim.Variant.QUERY_DATES_AS_TEXT, "its filter on LastUpdated does not compare"),
    ],
)
def test_leadexec_loads_every_lead_with_a_note_when_changes_cannot_be_told(
    store, settings, acme, variant, reason
):
    config, app = leadexec_app(variant=[variant])
    store.create_dataset(DatasetSpec(name="changes", account="acme", report="leads",
                                     params={"lid": 271}, update_method="merge",
                                     incremental={"start": "2026-11-20"}))  # fmt: skip
    with TestClient(app, base_url="http://leadexec.test") as client:
        result = run_dataset(store, settings, "changes", clock=lambda: NOW, client=client)
    assert result.status == "success"
    assert result.rows["leads"] == leadexec_sim.Simulation(config, now=NOW).total(271)
    assert result.error.startswith(f"LeadExec: {reason}")
    assert result.error.endswith(
        "every lead added since 2000-01-01 was loaded, not only the changes"
    )
    assert store.list_runs("changes")[0].error == result.error


def test_salesexec_last_updated_leads_follow_their_cursor(store, settings):
    config, app = salesexec_app()
    truth = salesexec_sim.Simulation(config, now=NOW)
    store.create_account("sales", "salesexec",
                         {"base_url": "http://salesexec.test", "username": SALES_USER},
                         {"password": SALES_PASSWORD})  # fmt: skip
    store.create_dataset(DatasetSpec(
        name="updated", account="sales", report="last_updated_leads", update_method="merge",
        incremental={"lookback_minutes": 0, "start": "2026-11-15"}))  # fmt: skip
    with TestClient(app, base_url="http://salesexec.test") as client:
        first = run_dataset(store, settings, "updated", clock=lambda: NOW, client=client)
        start = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
        assert first.rows["last_updated_leads"] == len(truth.last_updated_leads(start, NOW))
        cursor = store.get_dataset("updated").state.cursor
        later = NOW + dt.timedelta(hours=1)
        second = run_dataset(store, settings, "updated", clock=lambda: later, client=client)
    assert (second.window_start, second.window_end) == (cursor, later)
    assert second.rows["last_updated_leads"] == len(truth.last_updated_leads(cursor, later))


@pytest.mark.parametrize("method", ["replace", "append", "partition"])
def test_incremental_needs_merge(method):
    from leadferry.connectors import get_connector
    from leadferry.run.plan import check_dataset_settings

    with pytest.raises(ConfigError, match=r"needs the merge update method \(--update merge\)"):
        check_dataset_settings(get_connector("leadexec"), "leads", {"lid": 271}, DateSelection(),
                               None, method, None, {"lookback_minutes": 10})  # fmt: skip


def test_reports_without_a_change_timestamp_cannot_be_incremental():
    from leadferry.connectors import get_connector
    from leadferry.run.plan import check_dataset_settings

    with pytest.raises(ConfigError, match="cannot be loaded incrementally"):
        check_dataset_settings(get_connector("salesexec"), "all_leads", {}, DateSelection(),
                               None, "merge", None, {"lookback_minutes": 10})  # fmt: skip
