"""Every report of every connector through run_dataset, into real DuckDB files and SQLite.

Every installed simulator runs in-process at a host of its own (``http://leadexec.test``...),
reached through one HTTP client, so the reports, fixtures and accounts come from the registries:
an installed connector package is loaded here too. The built-ins get the settings the
vendor-specific tests below need; tests/e2e runs the same over real loopback servers.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import httpx2
import pytest

from leadferry.connectors import CONNECTORS
from leadferry.dates import DateSelection, today_in
from leadferry.errors import AuthError
from leadferry.run import run_dataset
from leadferry.simulators import SIMULATORS, SimulatedAccount
from leadferry.simulators import avidtrak as avidtrak_sim
from leadferry.store import DatasetSpec
from tests.conftest import (
    API_KEY,
    AVIDTRAK_ZONE,
    NOW,
    PIN,
    SALES_PASSWORD,
    SALES_USER,
    Vendors,
    avidtrak_app,
)

EMPTY_DAY = "2026-11-20"
TOKEN_TTL = 3600


class MovableClock:
    """The SalesExec simulator's clock for token expiry, moved forward by tests."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return NOW + self.offset


SALES_CLOCK = MovableClock()
"""Shared by the module's simulators (``world``); ``sales_clock`` sets it back after each test."""
OWN_LOGINS = [f"{name}:{name}-pw" for name in ("one_login", "expiring", "looping")]
SETTINGS: dict[str, dict[str, Any]] = {
    "leadexec": {"leads": 6_000, "days": 10, "api_key": [API_KEY], "lid": [271, 272]},
    "salesexec": {
        "leads": 3_000,
        "days": 10,
        "token_ttl": TOKEN_TTL,
        "users": [f"{SALES_USER}:{SALES_PASSWORD}", *OWN_LOGINS],
    },
    "avidtrak": {"calls": 3_000, "days": 10, "pin": [PIN], "timezone": AVIDTRAK_ZONE,
                 "empty_days": [EMPTY_DAY]},
}  # fmt: skip
"""The built-in simulators' settings for the tests below; other simulators take their defaults."""


@dataclass
class Simulated:
    url: str
    account: SimulatedAccount
    config: Any
    """The simulator's Settings."""

    truths: dict[str, Any] = field(default_factory=dict)

    def simulation(self, name: str) -> Any:
        """The vendor's own truth (a built-in simulator's ``Simulation``), generated once a
        module (0.1 to 0.2 s of CPU each time): the tests only read it."""
        if name not in self.truths:
            self.truths[name] = SIMULATORS[name].Simulation(self.config, now=NOW)
        return self.truths[name]


@dataclass
class World:
    vendors: Vendors
    simulated: dict[str, Simulated]
    client: httpx2.Client

    def __getitem__(self, name: str) -> Simulated:
        return self.simulated[name]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    vendors = Vendors()
    simulated = {}
    for name, simulator in SIMULATORS.items():
        config = simulator.Settings(**SETTINGS.get(name, {}))
        own_clock = {"clock": SALES_CLOCK} if name == "salesexec" else {}
        url = vendors.add(f"{name}.test", simulator.create_app(config, now=NOW, **own_clock))
        simulated[name] = Simulated(url, simulator.account(config, url), config)
    with vendors.client() as client:
        yield World(vendors, simulated, client)


@pytest.fixture(autouse=True)
def sales_clock() -> Iterator[MovableClock]:
    """The SalesExec simulator's clock at NOW for every test, whatever the one before did."""
    SALES_CLOCK.offset = dt.timedelta()
    yield SALES_CLOCK
    SALES_CLOCK.offset = dt.timedelta()


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.http_retries = 1
    settings.http_backoff = 0.0


@pytest.fixture
def accounts(store, world) -> World:
    """One account per simulator, named after its connector."""
    for name, simulated in world.simulated.items():
        connector = CONNECTORS[name]
        secret = {field.id for field in connector.fields if field.secret}
        fields = simulated.account.fields
        store.create_account(
            name,
            name,
            {k: v for k, v in fields.items() if k not in secret},
            {k: v for k, v in fields.items() if k in secret},
        )
    return world


@pytest.fixture
def run(store, settings, world):
    """``run(name, client=...)`` runs dataset *name* now, through the simulators' client."""

    def run_now(name, *, client=None, **kwargs):
        client = client or world.client
        return run_dataset(store, settings, name, clock=lambda: NOW, client=client, **kwargs)

    return run_now


def make(store, name, connector, report, params=None, **fields):
    return store.create_dataset(DatasetSpec(
        name=name, account=connector, report=report, params=params or {}, **fields))  # fmt: skip


def rows(settings, sql):
    connection = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return connection.sql(sql).fetchall()
    finally:
        connection.close()


def window(selection, zone):
    return DateSelection.parse(selection).resolve(zone, today_in(zone, NOW))


PARAMS = {"leads": {"lid": 271}}
EVERY_REPORT = [
    pytest.param(name, report.slug, id=f"{name}-{report.slug}")
    for name, connector in CONNECTORS.items()
    for report in connector.reports
]


@pytest.mark.parametrize(("connector", "slug"), EVERY_REPORT)
def test_every_report_loads_into_its_table(store, settings, accounts, run, connector, slug):
    report = CONNECTORS[connector].report(slug)
    selection = DateSelection(days_back=7) if report.dated else DateSelection()
    params = accounts[connector].account.params.get(slug)
    make(store, "ds", connector, slug, params, date_selection=selection)
    result = run("ds")
    assert result.status == "success"
    loaded = rows(settings, f"select count(*) from ds.{report.main_table.name}")[0][0]
    assert loaded == result.rows[report.main_table.name] > 0


# -- every date option, on one report of each connector, against the vendor's own truth -------

SELECTIONS = [
    {},
    {"date": "2026-11-18"},
    {"days_back": 0},
    {"days_back": 5},
    {"from_date": "2026-11-15", "to_date": "2026-11-19"},
    {"from_days_back": 6, "to_days_back": 2},
    {"from_date": "2026-11-17", "to_days_back": 0},
    {"from_days_back": 8, "to_date": "2026-11-21"},
]


def truth(connector, simulation, win, zone):
    if connector == "leadexec":
        return simulation.count(271, win.start, win.end)
    if connector == "salesexec":
        return len(simulation.leads(win.start, win.end))
    local = win.start.astimezone(dt.UTC).astimezone(_zone(zone))
    last = (win.end - dt.timedelta(seconds=1)).astimezone(_zone(zone))
    return len(
        simulation.offline_portal_calls(local.replace(tzinfo=None), last.replace(tzinfo=None))
    )


def _zone(name):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


DATED = {"leadexec": ("leads", "America/Los_Angeles"), "salesexec": ("all_leads", "UTC"),
         "avidtrak": ("offline_portal_calls", AVIDTRAK_ZONE)}  # fmt: skip


@pytest.mark.parametrize("connector", list(DATED))
@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda s: "-".join(map(str, s)) or "default")
def test_every_date_option_loads_exactly_the_vendors_rows(
    run, store, settings, accounts, connector, selection
):
    slug, zone = DATED[connector]
    chosen = DateSelection.parse(selection)
    make(store, "ds", connector, slug, PARAMS.get(slug), date_selection=chosen)
    result = run("ds")
    win = window(selection, zone)
    assert (result.window_start, result.window_end) == (win.start, win.end)
    simulation = accounts[connector].simulation(connector)
    assert result.rows.get(slug, 0) == truth(connector, simulation, win, zone)


# -- every update method, on one report of each connector ----------------------------------------

METHOD_REPORTS = {"leadexec": "leads", "salesexec": "all_actions", "avidtrak": "geographical_data"}


@pytest.mark.parametrize("connector", list(METHOD_REPORTS))
@pytest.mark.parametrize("method", ["replace", "append", "merge", "partition"])
def test_every_update_method(run, store, settings, accounts, connector, method):
    slug = METHOD_REPORTS[connector]
    report = CONNECTORS[connector].report(slug)
    make(
        store,
        "ds",
        connector,
        slug,
        PARAMS.get(slug),
        date_selection=DateSelection(days_back=3),
        update_method=method,
    )
    first = run("ds").rows[slug]
    run("ds")
    table = f"ds.{slug}"
    total = rows(settings, f"select count(*) from {table}")[0][0]
    keys = ", ".join(report.merge_key)
    distinct = rows(settings, f"select count(*) from (select distinct {keys} from {table})")[0][0]
    assert total == (2 * first if method == "append" else first)
    if method != "append":
        assert distinct == total
    # A wider window adds the new days and keeps one copy of the overlap.
    store.update_dataset("ds", date_selection=DateSelection(days_back=5))
    wider = run("ds").rows[slug]
    total = rows(settings, f"select count(*) from {table}")[0][0]
    expected = {"replace": wider, "append": 2 * first + wider}.get(method, wider)
    assert total == expected


# -- SalesExec: tokens ----------------------------------------------------------------------------


def fresh_sales_account(store, accounts, name):
    """An account of its own user: tokens are cached per login, so it starts with none."""
    store.create_account(name, "salesexec",
                         {"base_url": accounts["salesexec"].url, "username": name},
                         {"password": f"{name}-pw"})  # fmt: skip


def counting_client(world, logins, refused):
    def on_response(response):
        if response.request.url.path.endswith("/token"):
            logins.append(response)
        if response.status_code == 401:
            refused.append(response)

    client = world.vendors.client()
    client.event_hooks = {"response": [on_response]}
    return client


def test_one_login_serves_every_page_and_the_next_run(run, store, accounts):
    fresh_sales_account(store, accounts, "one_login")
    make(store, "actions", "one_login", "all_actions", date_selection=DateSelection(days_back=9))
    make(store, "leads_made", "one_login", "all_leads", date_selection=DateSelection(days_back=9))
    logins, refused = [], []
    with counting_client(accounts, logins, refused) as client:
        assert run("actions", client=client).rows["all_actions"] > 1000
        run("leads_made", client=client)
    assert len(logins) == 1
    assert refused == []


def test_a_token_that_expires_mid_run_is_renewed_once(run, store, settings, accounts):
    fresh_sales_account(store, accounts, "expiring")
    make(store, "actions", "expiring", "all_actions", date_selection=DateSelection(days_back=9))
    logins, refused = [], []

    def expire_after_first_page(progress):
        if progress.pages_done == 1:
            SALES_CLOCK.offset += dt.timedelta(seconds=TOKEN_TTL + 1)

    with counting_client(accounts, logins, refused) as client:
        result = run("actions", client=client, progress=expire_after_first_page)
    simulation = accounts["salesexec"].simulation("salesexec")
    win = window({"days_back": 9}, "UTC")
    assert result.rows["all_actions"] == len(simulation.actions(win.start, win.end))
    assert 1 <= len(refused) <= settings.concurrency, "pages in flight were refused once each"
    assert len(logins) == 2, "one login, then exactly one more after the token expired"


def test_a_token_refused_again_after_renewal_fails_instead_of_looping(
    run, store, settings, accounts
):
    fresh_sales_account(store, accounts, "looping")
    make(store, "actions", "looping", "all_actions", date_selection=DateSelection(days_back=1))
    logins, refused = [], []

    def expire_every_token(response):
        if response.request.url.path.endswith("/token"):
            SALES_CLOCK.offset += dt.timedelta(seconds=TOKEN_TTL + 1)

    with counting_client(accounts, logins, refused) as client:
        client.event_hooks["response"].append(expire_every_token)
        with pytest.raises(AuthError, match="SalesExec rejected the username or password"):
            run("actions", client=client)
    assert len(logins) == 2
    assert len(refused) == 2


def test_wrong_salesexec_credentials_fail_at_once(run, store, settings, accounts):
    store.create_account("bad_sales", "salesexec",
                         {"base_url": accounts["salesexec"].url, "username": SALES_USER},
                         {"password": "wrong-password"})  # fmt: skip
    make(store, "ds", "bad_sales", "all_leads")
    with pytest.raises(AuthError) as raised:
        run("ds")
    assert str(raised.value) == "SalesExec rejected the username or password for account bad_sales"
    assert "wrong-password" not in store.list_runs("ds")[0].error


def test_salesexec_reports_agree_through_their_datasets(run, store, settings, accounts):
    for name, slug in (
        ("counts", "branch_lead_count"),
        ("made", "all_leads"),
        ("closed", "closed_leads"),
    ):
        make(store, name, "salesexec", slug, date_selection=DateSelection(days_back=10))
        run(name)
    per_branch = dict(
        rows(
            settings, "select branch_name, sum(lead_count) from counts.branch_lead_count group by 1"
        )
    )
    from_leads = dict(rows(settings, "select branch_name, count(*) from made.all_leads group by 1"))
    assert per_branch == from_leads
    days = rows(settings, "select count(distinct report_day) from counts.branch_lead_count")[0][0]
    assert days == 10
    not_a_lead = rows(
        settings,
        "select count(*) from closed.closed_leads where lead_uid not in "
        "(select lead_uid from made.all_leads)",
    )[0][0]
    earlier = rows(
        settings,
        "select count(*) from closed.closed_leads c where exists "
        "(select 1 from made.all_leads a where a.lead_uid = c.lead_uid)",
    )[0][0]
    assert earlier > 0
    assert (
        not_a_lead
        == rows(
            settings,
            "select count(*) from closed.closed_leads where "
            "created_utc < (select min(created_utc) from made.all_leads)",
        )[0][0]
    )


def test_awaiting_import_count_takes_no_dates(run, store, settings, accounts):
    make(store, "waiting", "salesexec", "leads_awaiting_import_count")
    result = run("waiting")
    assert (result.window_start, result.window_end) == (None, None)
    counts = dict(
        rows(settings, "select lead_type_uid, count from waiting.leads_awaiting_import_count")
    )
    assert sum(counts.values()) == 37


# -- AvidTrak: codes, empty days, formats ------------------------------------------------------


def test_an_empty_day_is_an_empty_report_not_a_failure(run, store, settings, accounts):
    make(
        store,
        "calls",
        "avidtrak",
        "offline_portal_calls",
        date_selection=DateSelection(date=EMPTY_DAY),
    )
    result = run("calls")
    assert result.status == "success"
    assert result.rows == {"offline_portal_calls": 0}


def test_partition_empties_a_day_that_became_empty(run, store, settings, accounts):
    make(
        store,
        "geo",
        "avidtrak",
        "geographical_data",
        update_method="partition",
        date_selection=DateSelection(from_date="2026-11-19", to_date="2026-11-21"),
    )
    run("geo")
    days = {d for (d,) in rows(settings, "select distinct date from geo.geographical_data")}
    assert dt.date.fromisoformat(EMPTY_DAY) not in days
    assert len(days) == 2


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("variant", [None, *avidtrak_sim.Variant])
def test_a_wrong_pin_is_named_in_every_envelope(store, world, run, variant, fmt):
    _, app = avidtrak_app(variant=[variant] if variant else [])
    url = world.vendors.add(f"avidtrak-{variant or 'as-specified'}-{fmt}.test", app)
    store.create_account(
        "bad_pin", "avidtrak", {"base_url": url, "format": fmt}, {"pin_code": "0000-wrong"}
    )
    make(store, "ds", "bad_pin", "geographical_data")
    with pytest.raises(AuthError, match="^AvidTrak rejected the pin code for account bad_pin$"):
        run("ds")


def test_xml_answers_load_the_same_rows_as_json(run, store, settings, accounts):
    url = accounts["avidtrak"].account.fields["base_url"]
    store.create_account("xml_calls", "avidtrak",
                         {"base_url": url, "format": "xml", "timezone": AVIDTRAK_ZONE},
                         {"pin_code": PIN})  # fmt: skip
    make(
        store,
        "as_json",
        "avidtrak",
        "offline_portal_calls",
        date_selection=DateSelection(days_back=2),
    )
    make(
        store,
        "as_xml",
        "xml_calls",
        "offline_portal_calls",
        date_selection=DateSelection(days_back=2),
    )
    run("as_json")
    run("as_xml")
    select = "select * exclude (_dlt_load_id) from {}.offline_portal_calls order by call_id"
    assert rows(settings, select.format("as_json")) == rows(settings, select.format("as_xml"))


def test_geographical_rows_agree_with_the_calls(run, store, settings, accounts):
    make(store, "geo", "avidtrak", "geographical_data", date_selection=DateSelection(days_back=4))
    make(
        store,
        "calls",
        "avidtrak",
        "offline_portal_calls",
        date_selection=DateSelection(days_back=4),
    )
    run("geo")
    run("calls")
    geo = dict(rows(settings, "select date, sum(calls) from geo.geographical_data group by 1"))
    calls = Counter(
        d for (d,) in rows(settings, "select report_day from calls.offline_portal_calls")
    )
    assert geo == dict(calls)
