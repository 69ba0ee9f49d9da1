"""The service layer the CLI, the REST API and the pages share."""

from __future__ import annotations

import duckdb
import pytest

from leadferry.errors import ConfigError
from leadferry.schedule import Schedule
from leadferry.scheduler import Scheduler
from leadferry.service.accounts import update_account
from leadferry.service.datasets import edit_dataset, schedule_changes
from leadferry.service.listing import DatasetQuery, list_datasets
from leadferry.store import DatasetSpec
from leadferry.warehouse import open_warehouse
from tests.conftest import NOW, PIN, SALES_PASSWORD, SALES_USER

DAILY = Schedule.from_flags(daily="06:00", tz="UTC")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "http://", "not a url", "http://x\x00/hook", "/relative"]
)
def test_an_alert_webhook_must_be_an_http_url_with_a_host(url):
    with pytest.raises(ConfigError, match="alert webhook must be an http"):
        schedule_changes(DAILY, alert_webhook=url)


def test_a_usable_webhook_is_kept_and_an_empty_one_clears_it():
    hook = "https://hooks.example.com/leadferry?token=abc"
    assert schedule_changes(DAILY, alert_webhook=hook)["alert_webhook"] == hook
    assert schedule_changes(DAILY, alert_webhook="")["alert_webhook"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_every": 10}, "retry interval in minutes and the number of retries together"),
        ({"retry_every": 0, "retries": 2}, "must be 1 or more"),
        ({"no_retry": True, "retries": 2}, "do not retry cannot go with"),
        ({"stale_after": 0}, "1 minute or more"),
    ],
)
def test_retry_and_stale_settings_are_named_for_every_front_end(options, message):
    with pytest.raises(ConfigError, match=message):
        schedule_changes(DAILY, **options)


def test_a_dataset_cannot_move_to_an_account_of_another_connector(store, acme):
    store.create_account(
        "sales", "salesexec", {"username": SALES_USER}, {"password": SALES_PASSWORD}
    )
    store.create_account("calls", "avidtrak", {"base_url": "http://x/"}, {"pin_code": PIN})
    store.create_dataset(DatasetSpec("acme_leads", "acme", "leads", params={"lid": 271}))
    with pytest.raises(ConfigError, match="reads LeadExec reports: move it to another LeadExec"):
        edit_dataset(store, "acme_leads", {"account": "sales"}, NOW)
    assert store.get_dataset("acme_leads").account == "acme"


def test_a_manual_run_that_fails_is_recorded_but_not_retried(store, settings):
    settings.http_retries = 0
    store.create_account(
        "down", "leadexec", {"base_url": "http://127.0.0.1:9/"}, {"api_key": "k-123456"}
    )
    store.create_dataset(
        DatasetSpec("down_leads", "down", "leads", params={"lid": 271}, retry_every=5, retries=3)
    )
    service = Scheduler(store, settings, clock=lambda: NOW, workers=1)
    try:
        service.run_now("down_leads")
        service.wait()
    finally:
        service.shutdown()
    (run,) = store.list_runs("down_leads")
    assert (run.trigger, run.status) == ("manual", "failed")
    state = store.get_dataset("down_leads").state
    assert state.retry_at is None
    assert state.failing is False


def test_a_new_base_url_needs_the_secrets_again(store, acme):
    with pytest.raises(ConfigError, match="new Base URL would receive this account's secrets"):
        update_account(store, "acme", {"base_url": "http://127.0.0.1:9/"})
    update_account(store, "acme", {"base_url": "http://127.0.0.1:9/", "api_key": "k-98765"})
    assert store.get_account("acme").credentials()["api_key"] == "k-98765"


@pytest.mark.parametrize("url", ["notaurl", "http://", "ftp://leadexec.example/"])
def test_a_base_url_must_be_an_http_url_with_a_host(store, acme, url):
    with pytest.raises(ConfigError, match="Base URL must be an http"):
        update_account(store, "acme", {"base_url": url, "api_key": "k-98765"})


def test_sorting_by_rows_follows_the_warehouse_as_loads_change_it(store, settings, acme):
    for name in ("small", "large", "empty", "unloaded"):
        store.create_dataset(DatasetSpec(name, "acme", "leads", {"lid": 271}))
    warehouse = open_warehouse(settings)

    def load(rows: dict[str, int]) -> None:
        """Tables changed behind the runs' back, each by a run that recorded no count (as a
        run settled after its process died): the list counts them in the warehouse."""
        with duckdb.connect(str(settings.warehouse_path)) as connection:
            for name, count in rows.items():
                connection.execute(f"create schema if not exists {name}")
                connection.execute(
                    f"create or replace table {name}.leads as select range as uid "
                    f"from range({count})"
                )
        for name in rows:
            run = store.start_run(name, "manual", None, None, NOW)
            store.finish_run(run.id, "success", NOW)

    def by_rows(sort: str) -> list[str]:
        listing = list_datasets(store, warehouse, NOW, DatasetQuery(sort=sort))
        return [line.dataset.name for line in listing.lines]

    load({"small": 3, "large": 50, "empty": 0})
    assert by_rows("-rows") == ["large", "small", "empty", "unloaded"]
    assert by_rows("rows") == ["empty", "small", "large", "unloaded"]
    load({"small": 80})
    assert by_rows("-rows") == ["small", "large", "empty", "unloaded"]
