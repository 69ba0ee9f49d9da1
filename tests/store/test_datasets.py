from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from leadferry.dates import DateSelection
from leadferry.errors import BusyError, ConfigError, ConflictError, NotFoundError, StorageError
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store
from leadferry.store.database import create_store_engine

from ._support import T0, Clock, check_list_statuses


@pytest.fixture
def account(store: Store) -> str:
    store.create_account("acme", "leadexec", {}, {"api_key": "k3y-0123456789"})
    return "acme"


def test_a_dataset_is_created_and_read_back(store: Store, account: str) -> None:
    spec = DatasetSpec(
        "acme_leads",
        account,
        "leads",
        params={"lid": 271},
        date_selection=DateSelection(days_back=7),
        timezone="America/Los_Angeles",
        update_method="merge",
        merge_key="UID",
        description="All leads of campaign 271",
    )
    created = store.create_dataset(spec)
    dataset = store.get_dataset("acme_leads")
    assert dataset == created
    assert dataset.spec == spec
    assert (dataset.connector, dataset.account, dataset.last_run) == ("leadexec", "acme", None)
    assert dataset.created_at == dataset.updated_at == T0


def test_a_dataset_has_sensible_defaults(store: Store, account: str) -> None:
    dataset = store.create_dataset(DatasetSpec("d", account, "leads"))
    assert (dataset.params, dataset.date_selection, dataset.timezone) == (
        {},
        DateSelection(),
        None,
    )
    assert (dataset.update_method, dataset.merge_key, dataset.description) == ("replace", None, "")


def test_datasets_are_listed_by_name(store: Store, account: str) -> None:
    for name in ["zz", "aa", "mm"]:
        store.create_dataset(DatasetSpec(name, account, "leads"))
    assert [d.name for d in store.list_datasets()] == ["aa", "mm", "zz"]


def test_a_dataset_name_can_be_used_once(store: Store, account: str) -> None:
    store.create_dataset(DatasetSpec("acme_leads", account, "leads"))
    with pytest.raises(ConflictError, match="'acme_leads' already exists"):
        store.create_dataset(DatasetSpec("acme_leads", account, "leads"))


@pytest.mark.parametrize(
    "name", ["", "Acme", "1acme", "_acme", "acme-leads", "acme__leads", "acme leads", "a" * 64]
)
def test_a_dataset_name_must_be_a_schema_name(store: Store, account: str, name: str) -> None:
    with pytest.raises(ConfigError, match="warehouse schema name"):
        store.create_dataset(DatasetSpec(name, account, "leads"))


def test_new_is_not_a_dataset_name_because_it_is_the_add_dataset_page(
    store: Store, account: str
) -> None:
    with pytest.raises(ConfigError, match="/datasets/new is a page"):
        store.create_dataset(DatasetSpec("new", account, "leads"))


@pytest.mark.parametrize("name", ["a", "acme_leads", "leads2", "a_b_c", "a" * 63])
def test_valid_dataset_names_are_accepted(store: Store, account: str, name: str) -> None:
    assert store.create_dataset(DatasetSpec(name, account, "leads")).name == name


def test_an_unknown_update_method_is_refused(store: Store, account: str) -> None:
    with pytest.raises(ConfigError, match="replace, append, merge, partition"):
        store.create_dataset(DatasetSpec("d", account, "leads", update_method="upsert"))


def test_an_unknown_time_zone_is_refused(store: Store, account: str) -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        store.create_dataset(DatasetSpec("d", account, "leads", timezone="Mars/Olympus"))


def test_a_dataset_needs_an_existing_account(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no account named 'ghost'"):
        store.create_dataset(DatasetSpec("d", "ghost", "leads"))


def test_a_missing_dataset_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        store.get_dataset("nope")
    with pytest.raises(NotFoundError):
        store.update_dataset("nope", description="x")
    with pytest.raises(NotFoundError):
        store.remove_dataset("nope")


def test_updating_a_dataset_changes_only_the_given_fields(
    store: Store, dataset: str, clock: Clock
) -> None:
    later = clock.advance(minutes=5)
    updated = store.update_dataset(
        dataset, params={"lid": 272}, update_method="append", description="new"
    )
    assert (updated.params, updated.update_method, updated.description) == (
        {"lid": 272},
        "append",
        "new",
    )
    assert (updated.report, updated.account) == ("leads", "acme")
    assert (updated.created_at, updated.updated_at) == (T0, later)
    assert store.get_dataset(dataset) == updated


def test_updating_a_dataset_validates_the_new_values(store: Store, dataset: str) -> None:
    with pytest.raises(ConfigError, match="update method"):
        store.update_dataset(dataset, update_method="nope")
    with pytest.raises(ConfigError, match="time zone"):
        store.update_dataset(dataset, timezone="Nowhere/Land")
    assert store.get_dataset(dataset).update_method == "replace"


@pytest.mark.parametrize("field", ["name", "id", "colour"])
def test_updating_an_unknown_field_is_a_bug(store: Store, dataset: str, field: str) -> None:
    with pytest.raises(TypeError, match=field):
        store.update_dataset(dataset, **{field: "x"})


def test_a_dataset_moves_only_to_an_account_of_its_connector(store: Store, dataset: str) -> None:
    store.create_account("se", "salesexec", {"username": "bob"}, {"password": "pw-123456789"})
    with pytest.raises(ConfigError, match="another leadexec account"):
        store.update_dataset(dataset, account="se")
    with pytest.raises(NotFoundError, match="no account named 'ghost'"):
        store.update_dataset(dataset, account="ghost")
    store.create_account("acme2", "leadexec", {}, {})
    assert store.update_dataset(dataset, account="acme2").account == "acme2"


def test_removing_a_dataset_removes_its_runs(store: Store, dataset: str) -> None:
    run = store.start_run(dataset, "manual", None, None, T0)
    store.finish_run(run.id, "success", T0)
    store.remove_dataset(dataset)
    assert store.list_datasets() == []
    with pytest.raises(NotFoundError, match=f"no run with id {run.id}"):
        store.get_run(run.id)
    assert store.list_accounts()[0].dataset_count == 0


def test_a_running_dataset_is_not_removed(store: Store, dataset: str) -> None:
    store.start_run(dataset, "manual", None, None, T0)
    with pytest.raises(BusyError, match="already running"):
        store.remove_dataset(dataset)


def test_datasets_come_with_their_latest_run(store: Store, account: str) -> None:
    store.create_dataset(DatasetSpec("one", account, "leads"))
    store.create_dataset(DatasetSpec("two", account, "leads"))
    store.create_dataset(DatasetSpec("three", account, "leads"))
    first = store.start_run("one", "manual", None, None, T0)
    store.finish_run(first.id, "failed", T0, error="boom")
    second = store.start_run("one", "retry", None, None, T0)
    other = store.start_run("two", "scheduled", None, None, T0)
    latest = {d.name: d.last_run for d in store.list_datasets()}
    assert latest == {"one": second, "three": None, "two": other}
    assert store.get_dataset("one").last_run == second


def test_the_list_query_judges_filters_sorts_and_pages_in_sql(store: Store) -> None:
    check_list_statuses(store, T0 + timedelta(days=1))


def test_the_list_sorts_by_the_rows_each_successful_run_recorded(
    store: Store, account: str
) -> None:
    rows = {"small": 3, "large": 50, "empty": 0}
    for name in (*rows, "unloaded"):
        store.create_dataset(DatasetSpec(name, account, "leads", {"lid": 1}))
    for name, count in rows.items():
        run = store.start_run(name, "manual", None, None, T0)
        store.finish_run(run.id, "success", T0, table_rows=count)
    failed = store.start_run("large", "manual", None, None, T0)
    store.finish_run(failed.id, "failed", T0, error="the vendor answered 503")

    def by_rows(sort: str) -> list[str]:
        return [line.name for line in store.list_statuses(T0, sort=sort).lines]

    assert by_rows("-rows") == ["large", "small", "empty", "unloaded"]  # a failure changes none
    assert by_rows("rows") == ["empty", "small", "large", "unloaded"]
    assert store.get_dataset("large").table_rows == 50
    assert store.datasets_to_count() == []


def test_rows_not_counted_by_a_run_are_recorded_once_unless_it_ran_again(
    store: Store, account: str
) -> None:
    for name in ("settled", "rerun"):
        store.create_dataset(DatasetSpec(name, account, "leads", {"lid": 1}))
        run = store.start_run(name, "manual", None, None, T0)
        store.finish_run(run.id, "success", T0)  # its count is not known
    unknown = store.datasets_to_count()
    assert [dataset.name for dataset in unknown] == ["rerun", "settled"]
    again = store.start_run("rerun", "manual", None, None, T0)
    store.finish_run(again.id, "success", T0, table_rows=7)
    store.record_table_rows([(dataset, 99) for dataset in unknown])
    assert store.get_dataset("settled").table_rows == 99
    assert store.get_dataset("rerun").table_rows == 7  # its newer run's count stands
    assert store.datasets_to_count() == []


def test_a_running_dataset_is_not_counted(store: Store, account: str) -> None:
    store.create_dataset(DatasetSpec("busy", account, "leads", {"lid": 1}))
    first = store.start_run("busy", "manual", None, None, T0)
    store.finish_run(first.id, "success", T0)
    store.start_run("busy", "manual", None, None, T0 + timedelta(minutes=1))
    assert store.datasets_to_count() == []
    listed = store.list_statuses(T0 + timedelta(minutes=1)).lines
    assert [(line.last_status, line.last_success) for line in listed] == [("running", T0)]


def test_the_search_finds_a_display_name(store: Store, account: str) -> None:
    store.create_dataset(
        DatasetSpec("acme_leads", account, "leads", {"lid": 1}, display_name="Spring Leads")
    )
    store.create_dataset(DatasetSpec("acme_other", account, "leads", {"lid": 2}))
    assert [line.name for line in store.list_statuses(T0, search="spring").lines] == ["acme_leads"]
    assert store.get_dataset("acme_leads").title == "Spring Leads"
    assert store.get_dataset("acme_other").title == "acme_other"


def _stored_selections(settings: Settings, sql: str = "", **values: str) -> list[str | None]:
    """The date_selection column of every dataset as the database holds it (JSON text), after
    running *sql* with *values* if given."""
    engine = create_store_engine(settings.metadata_url)
    try:
        with engine.begin() as conn:
            if sql:
                conn.execute(text(sql), values)
            return list(conn.execute(text("select date_selection from datasets")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "selection",
    [
        DateSelection(),
        DateSelection(date=date(2026, 11, 1)),
        DateSelection(days_back=0),
        DateSelection(from_date=date(2026, 11, 2), to_days_back=1),
        DateSelection(from_days_back=10, to_days_back=5),
    ],
)
def test_a_date_selection_is_stored_as_its_json_and_read_back_typed(
    store: Store, account: str, settings: Settings, selection: DateSelection
) -> None:
    store.create_dataset(DatasetSpec("d", account, "leads", date_selection=selection))
    assert store.get_dataset("d").date_selection == selection
    [stored] = _stored_selections(settings)
    assert json.loads(stored or "null") == selection.as_json()  # the shape the API shows
    changed = store.update_dataset("d", date_selection=DateSelection(days_back=3))
    assert changed.date_selection == store.get_dataset("d").date_selection
    assert [json.loads(text or "null") for text in _stored_selections(settings)] == [
        {"days_back": 3}
    ]


def test_a_null_stored_selection_reads_as_default(
    store: Store, dataset: str, settings: Settings
) -> None:
    _stored_selections(settings, "update datasets set date_selection = null")
    assert store.get_dataset(dataset).date_selection == DateSelection()


def test_json_the_fast_parser_refuses_is_still_read(
    store: Store, dataset: str, settings: Settings
) -> None:
    # The store parses JSON columns with orjson, which refuses NaN and integers beyond 64
    # bits; the standard library, which wrote them, reads them.
    stored = '{"lid": 271, "ratio": NaN, "big": 123456789012345678901234567890}'
    _stored_selections(settings, "update datasets set params = :p", p=stored)
    params = store.get_dataset(dataset).params
    assert (params["lid"], params["big"]) == (271, 123456789012345678901234567890)
    assert params["ratio"] != params["ratio"]  # NaN


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ('{"days_back": -1}', "--days-back: -1 is negative"),
        ('{"date": "2026-02-30"}', "--date: '2026-02-30' is not a date"),
        ('{"preset": "last_7_days"}', "--preset: Extra inputs are not permitted"),
        ('["days_back", 7]', "a mapping was expected, not list"),
    ],
)
def test_a_bad_stored_selection_is_a_one_line_error(
    store: Store, dataset: str, settings: Settings, stored: str, reason: str
) -> None:
    _stored_selections(settings, "update datasets set date_selection = :s", s=stored)
    with pytest.raises(StorageError) as caught:
        store.get_dataset(dataset)
    message = str(caught.value)
    assert message.startswith("dataset 'acme_leads' has an invalid date selection in the store")
    assert reason in message
    assert "\n" not in message
