"""Every [confirmed] fact of specs/vendor-apis.md section 1 (LeadExec), pinned by values written
here from the spec, never taken from the simulator's or the client's constants.

Each fact runs against the simulator over HTTP and, where the client relies on it, through the
client against every variant the simulator plays. docs/connectors.md numbers the facts (L1..L27)
and names the test that pins each.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from lxml import etree
from starlette.testclient import TestClient

from leadferry.connectors.base import Credentials, RetryPolicy
from leadferry.connectors.leadexec import LeadExecConnector
from leadferry.dates import DateSelection, DateWindow
from leadferry.simulators import leadexec as leadexec_sim
from tests.conftest import API_KEY, NOW, leadexec_app

LA = ZoneInfo("America/Los_Angeles")
REPORT = LeadExecConnector.report("leads")
WEEK = DateSelection(days_back=7).resolve("America/Los_Angeles", NOW.date())
SYSTEM_ELEMENTS = [
    "UID", "LeadSource", "DateAdded", "FileUID", "Campaign", "IsValid", "MaxSell", "Price"
]  # fmt: skip
SYSTEM_COLUMNS = {
    "uid": pa.int64(), "lead_source": pa.string(), "file_uid": pa.int64(),
    "campaign": pa.string(), "is_valid": pa.bool_(), "max_sell": pa.int64(),
}  # fmt: skip
DATA_TYPES = {
    "String", "Int32", "Int64", "Boolean", "Double", "Decimal", "Float", "DateTime",
    "PhoneNumber", "YesNo", "USState", "PostalCode",
}  # fmt: skip
US_12_HOUR = re.compile(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M")
VARIANTS = [
    pytest.param([], id="as-specified"),
    *(pytest.param([v], id=v.value) for v in leadexec_sim.Variant),
]


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    _, app = leadexec_app()
    with TestClient(app, base_url="http://le.test") as client:
        yield client


def get(api: TestClient, **params: Any) -> etree._Element:
    response = api.get("/", params={"key": API_KEY, "lid": 271, **params})
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content)


@contextmanager
def client_against(variant: list[Any]) -> Iterator[tuple[LeadExecConnector, list[Any]]]:
    """The client against the simulator playing *variant*, and the requests it sent."""
    _, app = leadexec_app(variant=variant)
    sent: list[Any] = []
    with TestClient(app, base_url="http://le.test") as client:
        client.event_hooks["request"].append(sent.append)
        credentials = Credentials("acme", {"api_key": API_KEY, "base_url": "http://le.test/"})
        yield LeadExecConnector(client, credentials, retry=RetryPolicy(attempts=1)), sent


def load(connector: LeadExecConnector, window: DateWindow) -> dict[str, pa.Table]:
    parts: dict[str, list[pa.Table]] = {}
    for item in connector.fetch(REPORT, {"lid": 271}, window):
        parts.setdefault(item.table, []).append(pa.Table.from_batches([item.batch]))
    return {
        name: pa.concat_tables(tables, promote_options="default") for name, tables in parts.items()
    }


def us_time(text: str) -> dt.datetime:
    """``1/5/2014 10:50:54 AM`` as a naive wall-clock time."""
    return dt.datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p")  # noqa: DTZ007


def wall(moment: dt.datetime) -> str:
    return moment.astimezone(LA).strftime("%m-%d-%Y %H:%M:%S")


# -- L1, L4-L7, L10, L11, L13, L15, L27: what the client sends ---------------------------------


def test_client_defaults_are_the_spec_s():
    assert LeadExecConnector.field("base_url").default == "https://apidata.leadexec.net/"
    assert LeadExecConnector.field("timezone").default == "America/Los_Angeles"
    assert LeadExecConnector.page_size == 1000


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_client_gets_pages_of_1000_with_the_key_as_its_only_credential(variant):
    with client_against(variant) as (connector, sent):
        load(connector, WEEK)
    assert len(sent) == 3  # 2,100 leads of lid 271 in the week: 1,000 + 1,000 + 100
    for number, request in enumerate(sent):
        assert request.method == "GET"
        assert request.url.path == "/"
        assert "authorization" not in request.headers
        assert dict(request.url.params) == {
            "key": API_KEY, "lid": "271", "skip": str(1000 * number), "take": "1000",
            "sortfields": "DateAdded", "sortorder": "ASC",
            "startdate": wall(WEEK.start), "enddate": wall(WEEK.end),
        }  # fmt: skip


# -- L2, L3: how the service reads requests ----------------------------------------------------


def test_post_forms_answer_like_get(api):
    params = {"key": API_KEY, "lid": "271", "startdate": "11/20/2026", "take": "5"}
    by_get = api.get("/", params=params).content
    assert api.post("/", data=params).content == by_get
    assert api.post("/", files={k: (None, v) for k, v in params.items()}).content == by_get


def test_parameter_names_as_public_clients_spell_them(api):
    window = {"startdate": "11/20/2026", "enddate": "11/21/2026"}
    vendor = api.get(
        "/",
        params={"key": API_KEY, "lid": 271, **window, "skip": 3, "take": 7, "sortorder": "DESC"},
    )
    public = api.get("/", params={"key": API_KEY, "LID": 271, "StartDate": "11/20/2026",
                                  "EndDate": "11/21/2026", "Skip": 3, "Take": 7,
                                  "SortOrder": "DESC"})  # fmt: skip
    assert vendor.content == public.content
    assert etree.fromstring(public.content).get("sentcount") == "7"


# -- L12: dates read loosely, US style ---------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "last"),
    [
        ("1/1/2010", "11/20/2026", "11/20/2026 12:00:00 AM"),
        ("01/05/2014", "11-20-2026 13:05:00", "11/20/2026 1:05:00 PM"),
        ("1/5/2014 10:50:54 AM", "11/20/2026 1:05:00 PM", "11/20/2026 1:05:00 PM"),
    ],
)
def test_us_dates_as_real_clients_send_them(api, start, end, last):
    newest = get(api, startdate=start, enddate=end, take=1, sortorder="DESC")
    added = us_time(newest.findtext("Lead/DateAdded"))
    assert us_time(last) - dt.timedelta(minutes=5) <= added < us_time(last)  # one every 4.8'
    oldest = get(api, startdate=start, enddate=end, take=1)
    assert oldest.findtext("Lead/UID") == get(api, take=1).findtext("Lead/UID")


# -- L8, L9, L10, L11, L14, L16, L17: paging, filters, projection, sorting ---------------------


def test_take_1_reads_the_total_and_skip_take_pages_through_it(api):
    window = {"startdate": "11/18/2026", "enddate": "11/20/2026"}
    first = get(api, take=1, **window)
    total = int(first.get("querytotal"))
    assert (first.get("sentcount"), len(first.findall("Lead"))) == ("1", 1)
    pages = [get(api, skip=skip, take=250, **window) for skip in range(0, total, 250)]
    uids = [uid for page in pages for uid in page.xpath("Lead/UID/text()")]
    assert all(page.get("querytotal") == str(total) for page in pages)
    assert all(page.get("sentcount") == str(len(page.findall("Lead"))) for page in pages)
    assert len(uids) == len(set(uids)) == total > 250


def test_the_spec_s_query_example_filters_on_the_field(api):
    everything = get(api, startdate="11/18/2026", enddate="11/20/2026", take=1000)
    expected = [
        lead.findtext("UID")
        for lead in everything.iter("Lead")
        if lead.findtext("LoanAmount") is not None and int(lead.findtext("LoanAmount")) >= 150000
    ]
    query = '{"LoanAmount":{"$gte":150000}}'
    root = get(api, startdate="11/18/2026", enddate="11/20/2026", take=1000, query=query)
    assert root.xpath("Lead/UID/text()") == expected
    assert int(root.get("querytotal")) == len(expected) > 0


def test_fields_projects_on_pipe_separated_names(api):
    root = get(api, fields="FirstName|LastName", take=50)
    tags = {child.tag for lead in root.iter("Lead") for child in lead}
    assert {"FirstName", "LastName"} <= tags <= {"UID", "FirstName", "LastName"}


def test_sortfields_sorts_on_several_pipe_separated_fields(api):
    root = get(api, startdate="11/18/2026", enddate="11/19/2026", take=1000,
               sortfields="Campaign|DateAdded", sortorder="DESC")  # fmt: skip
    keys = [
        (lead.findtext("Campaign"),
         us_time(lead.findtext("DateAdded")))
        for lead in root.iter("Lead")
    ]  # fmt: skip
    assert len({campaign for campaign, _ in keys}) > 1
    assert keys == sorted(keys, reverse=True)
    default = get(api, startdate="11/18/2026", enddate="11/19/2026", take=1000)
    assert default.xpath("Lead/UID/text()") == sorted(default.xpath("Lead/UID/text()"), key=int), (
        "DateAdded by default, ascending (UIDs grow with DateAdded)"
    )


# -- L18-L25: what a lead holds ----------------------------------------------------------------


def test_system_elements_come_first_then_own_fields_then_sends(api):
    root = get(api, take=200)
    sold = 0
    for lead in root.iter("Lead"):
        tags = [child.tag for child in lead]
        assert tags[:8] == SYSTEM_ELEMENTS
        assert lead.findtext("UID").isdigit()
        assert US_12_HOUR.fullmatch(lead.findtext("DateAdded"))
        assert lead.findtext("IsValid") in ("true", "false")
        assert "FirstName" in tags[8:] or "LastName" in tags[8:] or len(tags) > 9
        if "Sends" in tags:
            assert tags[-1] == "Sends"
            sold += 1
    assert sold > 0


def test_field_data_types_are_the_documented_ones():
    config, _ = leadexec_app()
    simulation = leadexec_sim.Simulation(config, now=NOW)
    for lid in (271, 272):
        types = {data_type for name, data_type in simulation.fields(lid) if name != "Sends"}
        assert types <= DATA_TYPES


def test_lead_types_differ_and_a_field_is_on_some_leads_only(api):
    first = get(api, lid=271, take=300)
    second = get(api, lid=272, take=300)

    def tags(root: etree._Element) -> list[set[str]]:
        return [{child.tag for child in lead} for lead in root.iter("Lead")]

    assert set.union(*tags(first)) != set.union(*tags(second))
    assert set.union(*tags(first)) != set.intersection(*tags(first))


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_client_loads_system_fields_by_the_spec_s_names(api, variant):
    day = DateSelection(date="2026-11-20").resolve("America/Los_Angeles", NOW.date())
    with client_against(variant) as (connector, _):
        leads = load(connector, day)["leads"]
    for column, data_type in SYSTEM_COLUMNS.items():
        assert leads.schema.field(column).type == data_type
    raw = get(api, startdate="11/20/2026", enddate="11/21/2026", take=1000)
    assert leads.num_rows == int(raw.get("querytotal"))
    by_uid = {row["uid"]: row for row in leads.to_pylist()}
    for lead in raw.iter("Lead"):
        row = by_uid[int(lead.findtext("UID"))]
        added = us_time(lead.findtext("DateAdded"))
        assert row["date_added"] == added.replace(tzinfo=LA)
        assert row["lead_source"] == lead.findtext("LeadSource")
        assert row["campaign"] == lead.findtext("Campaign")
        assert row["file_uid"] == int(lead.findtext("FileUID"))
        assert row["max_sell"] == int(lead.findtext("MaxSell"))
        assert row["is_valid"] == (lead.findtext("IsValid") == "true")
        assert row["price"] == Decimal(lead.findtext("Price"))
        assert row.get("first_name") == lead.findtext("FirstName")


# -- L26: one lead is one row ------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_one_lead_page_loads_exactly_one_row(api, variant):
    lead = get(api, startdate="11/20/2026", take=1).find("Lead")
    added = us_time(lead.findtext("DateAdded"))
    window = DateWindow(
        added.replace(tzinfo=LA), added.replace(tzinfo=LA) + dt.timedelta(seconds=1)
    )
    with client_against(variant) as (connector, _):
        tables = load(connector, window)
    assert tables["leads"].num_rows == 1
    assert tables["leads"].column("uid").to_pylist() == [int(lead.findtext("UID"))]
    sends = lead.find("Sends")
    expected_sends = 0 if sends is None else len(sends)
    assert tables.get("lead_sends", pa.table({"x": []})).num_rows == expected_sends


class InFlight:
    """An ASGI wrapper counting the most requests the app answers at once. Every request after
    the first waits (up to 10 s) until another one is in flight with it, so that requests sent
    in parallel are seen together however slow the machine, and sequential ones never are."""

    def __init__(self, app: Any) -> None:
        self.app, self.seen, self.now, self.most = app, 0, 0, 0
        self.together = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.seen += 1
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            if self.seen > 1:
                if self.now == 2:
                    self.together.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.together.wait(), 10)
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


def test_the_pages_after_the_first_are_fetched_in_parallel():
    _, app = leadexec_app()
    gauge = InFlight(app)
    with TestClient(gauge, base_url="http://le.test") as client:
        credentials = Credentials("acme", {"api_key": API_KEY, "base_url": "http://le.test/"})
        connector = LeadExecConnector(client, credentials, concurrency=4)
        tables = load(connector, WEEK)
    assert tables["leads"].num_rows == 2100
    assert gauge.most == 2, "the first page alone, then the other two together"
