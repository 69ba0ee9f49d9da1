"""The LeadExec simulator answers like the Data Interface in shared/specs/vendor-apis.md, section 1.

Everything runs in-process through starlette's TestClient. Expected values come from the spec and
from :class:`Simulation` (the truth), parsed here with independent code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from starlette.testclient import TestClient

from leadferry.simulators import SIMULATORS
from leadferry.simulators import leadexec as leadexec_sim
from tests.conftest import examples

NOW = datetime(2026, 3, 20, 18, 30, tzinfo=UTC)  # 11:30 AM in Los Angeles (PDT)
KEY = "k3y"
JSON = {"Accept": "application/json"}


def make_client(**options: Any) -> TestClient:
    options = {"api_key": [KEY], "leads": 2000, **options}
    return TestClient(leadexec_sim.create_app(leadexec_sim.Settings(**options), NOW))


@pytest.fixture(scope="module")
def leadexec_api() -> Iterator[TestClient]:
    with make_client() as client:
        yield client


@pytest.fixture(scope="module")
def sim(leadexec_api: TestClient) -> leadexec_sim.Simulation:
    return leadexec_api.app.state.simulation  # type: ignore[attr-defined,no-any-return]


def get(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> Any:
    return client.get("/", params={"key": KEY, "lid": 1, **params}, headers=headers)


def leads_xml(response: Any) -> etree._Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return etree.fromstring(response.content)


def wall(*parts: int) -> datetime:
    """A naive wall-clock time in the simulator's zone, as the vendor writes dates."""
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)


def read_us(text: str) -> datetime:
    """Read ``1/5/2014 10:50:54 AM`` (a naive wall-clock time)."""
    return datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p")  # noqa: DTZ007


def us(value: datetime) -> str:
    return value.strftime("%-m/%-d/%Y %-I:%M:%S %p")


def typed(text: Any, dtype: str, iso: bool) -> Any:
    """A value read from the answer, in the type the truth uses."""
    if dtype == "DateTime":
        return datetime.fromisoformat(text) if iso else read_us(text)
    if dtype in ("Int32", "Int64"):
        return int(text)
    if dtype in ("Double", "Float"):
        return float(text)
    if dtype == "Decimal":
        return Decimal(str(text))
    if dtype == "Boolean":
        return text if isinstance(text, bool) else {"true": True, "false": False}[text]
    return text


SEND_TYPES = {
    "ClientUID": "Int32",
    "ClientName": "String",
    "DateSent": "DateTime",
    "Price": "Decimal",
}


def lead_from_xml(element: etree._Element, types: dict[str, str]) -> dict[str, Any]:
    lead: dict[str, Any] = {}
    for child in element:
        if child.tag == "Sends":
            lead["Sends"] = [
                {f.tag: typed(f.text, SEND_TYPES[f.tag], iso=False) for f in send} for send in child
            ]
        else:
            lead[child.tag] = typed(child.text or "", types[child.tag], iso=False)
    lead.setdefault("Sends", [])
    return lead


def lead_from_json(obj: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    lead = {k: typed(v, types[k], iso=True) for k, v in obj.items() if k != "Sends"}
    lead["Sends"] = [
        {k: typed(v, SEND_TYPES[k], iso=True) for k, v in send.items()} for send in obj["Sends"]
    ]
    return lead


# ---------------------------------------------------------------------------------------------
# Requests


def test_get_answers_leads_as_xml(leadexec_api, sim):
    root = leads_xml(get(leadexec_api, take=5))
    assert root.tag == "Leads"
    assert root.attrib == {"querytotal": "2000", "takecount": "5", "sentcount": "5"}
    first = root[0]
    assert [c.tag for c in first][:9] == list(leadexec_sim.SYSTEM_FIELDS)
    assert first.findtext("UID") == "22363629"
    assert first.findtext("DateAdded") == us(sim.start)


def test_post_urlencoded_and_multipart_answer_like_get(leadexec_api):
    params = {"key": KEY, "lid": "1", "take": "7", "skip": "3"}
    expected = leadexec_api.get("/", params=params).content
    assert leadexec_api.post("/", data=params).content == expected
    multipart = {name: (None, value) for name, value in params.items()}
    response = leadexec_api.post("/", files=multipart)
    assert response.headers["content-type"].startswith("application/xml")
    assert response.content == expected


def test_parameter_names_are_case_insensitive(leadexec_api):
    lower = {"key": KEY, "lid": 1, "startdate": "3/1/2026", "enddate": "3/2/2026", "take": 3}
    mixed = {"Key": KEY, "LID": 1, "StartDate": "3/1/2026", "EndDate": "3/2/2026", "Take": 3}
    upper = {k.upper(): v for k, v in lower.items()} | {"SORTORDER": "ASC", "SKIP": 0}
    bodies = {leadexec_api.get("/", params=p).content for p in (lower, mixed, upper)}
    assert len(bodies) == 1
    assert leads_xml(leadexec_api.get("/", params=mixed)).attrib["sentcount"] == "3"


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        ("3/1/2026", "3/2/2026", wall(2026, 3, 1), wall(2026, 3, 2)),
        ("03/01/2026", "03/02/2026", wall(2026, 3, 1), wall(2026, 3, 2)),
        ("03-01-2026 13:05:00", "03-02-2026 08:00:00", wall(2026, 3, 1, 13, 5),
         wall(2026, 3, 2, 8)),
        ("3/1/2026 1:05:00 PM", "3/2/2026 12:00:00 AM", wall(2026, 3, 1, 13, 5), wall(2026, 3, 2)),
        ("2026-03-01", "2026-03-02T06:30:00", wall(2026, 3, 1), wall(2026, 3, 2, 6, 30)),
        ("2026-03-01T21:00:00Z", "2026-03-02T09:00:00+01:00", wall(2026, 3, 1, 13),
         wall(2026, 3, 2)),
        # what .NET's DateTime.Parse also reads: year first with slashes, two-digit years
        ("2026/03/01", "2026/3/2 06:30", wall(2026, 3, 1), wall(2026, 3, 2, 6, 30)),
        ("3/1/26", "03/02/26 12:00:00 AM", wall(2026, 3, 1), wall(2026, 3, 2)),
    ],
)  # fmt: skip
def test_every_documented_date_format_is_accepted(leadexec_api, sim, start, end, first, last):
    root = leads_xml(get(leadexec_api, startdate=start, enddate=end))
    assert int(root.get("querytotal")) == sim.count(1, first, last) > 0
    added = [read_us(text) for text in root.xpath("Lead/DateAdded/text()")]
    assert first <= min(added)
    assert max(added) < last


@pytest.mark.parametrize("bad", ["yesterday", "13/45/2026", "2026-02-30", "3/1/2026 13:00 PM"])
def test_an_unparsable_date_is_400(leadexec_api, bad):
    response = get(leadexec_api, startdate=bad)
    assert response.status_code == 400
    assert etree.fromstring(response.content).tag == "Error"
    assert "startdate" in response.text
    response = get(leadexec_api, JSON, enddate=bad)
    assert response.status_code == 400
    assert "enddate" in response.json()["Error"]


@pytest.mark.parametrize("key", [None, "", "wrong", KEY.upper()])
def test_a_missing_or_wrong_key_is_401(leadexec_api, key):
    params = {"lid": 1} | ({} if key is None else {"key": key})
    response = leadexec_api.get("/", params=params)
    assert response.status_code == 401
    assert response.text == "<Error>Invalid API Key</Error>"
    response = leadexec_api.get("/", params=params, headers=JSON)
    assert response.status_code == 401
    assert response.json() == {"Error": "Invalid API Key"}


def test_an_unknown_lid_has_no_leads(leadexec_api):
    root = leads_xml(get(leadexec_api, lid=999))
    assert root.attrib == {"querytotal": "0", "takecount": "1000", "sentcount": "0"}
    assert len(root) == 0
    assert get(leadexec_api, JSON, lid=999).json() == {
        "QueryTotal": 0, "TakeCount": 1000, "SentCount": 0, "Leads": []
    }  # fmt: skip


def test_a_missing_lid_is_400_naming_it(leadexec_api):
    response = leadexec_api.get("/", params={"key": KEY})
    assert response.status_code == 400
    assert "lid" in etree.fromstring(response.content).text
    assert "lid" in leadexec_api.get("/", params={"key": KEY}, headers=JSON).json()["Error"]


@pytest.mark.parametrize(
    ("name", "value"), [("skip", "-1"), ("take", "ten"), ("lid", "x"), ("sortorder", "UP")]
)
def test_bad_numbers_and_sort_orders_are_400(leadexec_api, name, value):
    response = get(leadexec_api, **{name: value})
    assert response.status_code == 400
    assert name in response.text


def test_health_answers_ok(leadexec_api):
    assert leadexec_api.get("/__health").text == "ok"


# ---------------------------------------------------------------------------------------------
# Paging and windows


def test_take_defaults_to_and_is_capped_at_1000(leadexec_api):
    assert leads_xml(get(leadexec_api)).attrib == {
        "querytotal": "2000", "takecount": "1000", "sentcount": "1000"
    }  # fmt: skip
    root = leads_xml(get(leadexec_api, take=5000))
    assert (root.get("takecount"), root.get("sentcount"), len(root)) == ("1000", "1000", 1000)


def test_pages_cover_the_window_once_with_a_partial_last_page(leadexec_api, sim):
    window = {"startdate": "3/1/2026", "enddate": "3/8/2026"}
    total = sim.count(1, wall(2026, 3, 1), wall(2026, 3, 8))
    uids, skip = [], 0
    while True:
        root = leads_xml(get(leadexec_api, skip=skip, take=150, **window))
        assert int(root.get("querytotal")) == total
        assert root.get("takecount") == "150"
        assert int(root.get("sentcount")) == len(root) == min(150, max(0, total - skip))
        uids += [int(u) for u in root.xpath("Lead/UID/text()")]
        if len(root) < 150:
            break
        skip += 150
    assert total % 150 != 0  # so the last page above was partial
    first = sim.index_range(1, wall(2026, 3, 1), wall(2026, 3, 8)).start
    assert uids == [sim.lead(1, first + n)["UID"] for n in range(total)]


def test_take_zero_counts_without_sending(leadexec_api):
    assert leads_xml(get(leadexec_api, take=0)).attrib == {
        "querytotal": "2000", "takecount": "0", "sentcount": "0"
    }  # fmt: skip


def test_the_window_includes_its_start_and_excludes_its_end(leadexec_api, sim):
    at = sim.lead(1, 500)["DateAdded"]
    assert sim.lead(1, 499)["DateAdded"] < at < sim.lead(1, 501)["DateAdded"]
    root = leads_xml(get(leadexec_api, startdate=us(at), enddate=us(at + timedelta(seconds=1))))
    assert root.xpath("Lead/UID/text()") == [str(sim.lead(1, 500)["UID"])]
    root = leads_xml(get(leadexec_api, startdate=us(at), enddate=us(at)))
    assert root.get("querytotal") == "0"
    root = leads_xml(get(leadexec_api, enddate=us(at)))
    assert root.get("querytotal") == "500"


def test_leads_are_spread_evenly_over_the_days_before_now(sim):
    added = [sim.lead(1, i)["DateAdded"] for i in range(sim.total(1))]
    assert added == sorted(added)
    assert added[0] == sim.start == wall(2026, 2, 18, 11, 30)
    assert sim.end - timedelta(days=30) / 2000 <= added[-1] < sim.end == wall(2026, 3, 20, 11, 30)
    assert sim.count(1, wall(2026, 3, 1), wall(2026, 3, 2)) in (66, 67)


@settings(max_examples=examples(60), deadline=None)
@given(
    start=st.datetimes(wall(2026, 2, 15), wall(2026, 3, 25)),
    length=st.timedeltas(timedelta(0), timedelta(days=5)),
    leads=st.integers(0, 300),
    lids=st.lists(st.integers(1, 9), min_size=0, max_size=3),
)
def test_count_is_the_number_of_leads_in_the_window(start, length, leads, lids):
    simulation = leadexec_sim.Simulation(leadexec_sim.Settings(leads=leads, lid=lids, days=3), NOW)
    end = start + length
    for lid in simulation.lids:
        added = [simulation.lead(lid, i)["DateAdded"] for i in range(simulation.total(lid))]
        assert simulation.count(lid, start, end) == sum(start <= a < end for a in added)
    assert sum(simulation.total(lid) for lid in simulation.lids) == leads


# ---------------------------------------------------------------------------------------------
# Content


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    def body(seed: int) -> bytes:
        with make_client(seed=seed) as client:
            return get(client, take=200).content + get(client, JSON, take=50, skip=900).content

    assert body(7) == body(7)
    assert body(7) != body(8)


def test_xml_leads_hold_exactly_the_truth(leadexec_api, sim):
    types = dict(sim.fields(1))
    root = leads_xml(get(leadexec_api, skip=100, take=400))
    for n, element in enumerate(root):
        assert lead_from_xml(element, types) == sim.lead(1, 100 + n)


def test_json_leads_hold_exactly_the_truth(leadexec_api, sim):
    types = dict(sim.fields(1))
    response = get(leadexec_api, JSON, skip=100, take=400)
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.content, parse_float=Decimal)
    assert (body["QueryTotal"], body["TakeCount"], body["SentCount"]) == (2000, 400, 400)
    assert list(body) == ["QueryTotal", "TakeCount", "SentCount", "Leads"]
    for n, obj in enumerate(body["Leads"]):
        assert isinstance(obj["UID"], str)
        assert "LastUpdated" in obj
        assert isinstance(obj["Sends"], list)
        assert datetime.fromisoformat(obj["DateAdded"]).isoformat() == obj["DateAdded"]
        assert lead_from_json(obj, types) == sim.lead(1, 100 + n)


def test_xml_escapes_markup_and_keeps_non_ascii(leadexec_api, sim):
    response = get(leadexec_api)
    text = response.content.decode("utf-8")
    assert "&amp;" in text
    assert "&lt;" in text
    root = leads_xml(response)
    values = set(root.xpath("Lead/*/text()"))
    assert {"Smith & Wesson", "<unknown>"} & values
    assert any(not v.isascii() for v in values)


def test_fields_vary_per_lead_and_have_typed_values(sim):
    leads = [sim.lead(1, i) for i in range(500)]
    types = dict(sim.fields(1))
    for name in types:
        present = sum(name in lead for lead in leads)
        always = ("UID", "FirstName", "LastName", "OptIn", "Status", "Sends")
        if name not in (*always, *leadexec_sim.SYSTEM_FIELDS):
            assert 0 < present < 500, name
    assert set(types.values()) >= {
        "String", "Int32", "Int64", "Boolean", "Double", "Decimal", "Float", "DateTime",
        "PhoneNumber", "YesNo", "USState", "PostalCode",
    }  # fmt: skip
    assert {lead["Homeowner"] for lead in leads if "Homeowner" in lead} == {"Yes", "No"}
    assert all(lead["DateAdded"] <= lead["LastUpdated"] <= sim.end for lead in leads)


def test_some_leads_were_never_sold_and_others_up_to_three_times(leadexec_api, sim):
    counts = {len(sim.lead(1, i)["Sends"]) for i in range(300)}
    assert counts == {0, 1, 2, 3}
    root = leads_xml(get(leadexec_api, take=300))
    assert {len(lead.findall("Sends/Send")) for lead in root} == {0, 1, 2, 3}
    for i in range(300):
        lead = sim.lead(1, i)
        dates = [lead["DateAdded"], *(send["DateSent"] for send in lead["Sends"])]
        assert dates == sorted(dates)


def test_fields_projects_case_insensitively_and_keeps_uid(leadexec_api):
    root = leads_xml(get(leadexec_api, take=50, fields="firstname|LASTNAME|DateAdded|Nope"))
    assert {tuple(c.tag for c in lead) for lead in root} == {
        ("UID", "DateAdded", "FirstName", "LastName")
    }
    body = get(leadexec_api, JSON, take=5, fields="Sends|State").json()
    assert all(set(lead) <= {"UID", "State", "Sends"} and "Sends" in lead for lead in body["Leads"])


def test_each_lead_type_has_its_own_fields_and_leads():
    simulation = leadexec_sim.Simulation(leadexec_sim.Settings(leads=3000, lid=[271, 272, 15]), NOW)
    field_sets = [frozenset(simulation.fields(lid)) for lid in (271, 272, 15)]
    assert len(set(field_sets)) == 3
    assert [simulation.total(lid) for lid in (271, 272, 15)] == [1000, 1000, 1000]
    uids = [simulation.lead(lid, i)["UID"] for lid in (271, 272, 15) for i in range(1000)]
    assert sorted(uids) == list(range(22363629, 22363629 + 3000))
    with TestClient(leadexec_sim.create_app(leadexec_sim.Settings(lid=[271, 272]), NOW)) as client:
        root = leads_xml(client.get("/", params={"key": "demo-key", "lid": 272, "take": 1}))
        assert root.get("querytotal") == "5000"
        assert {c.tag for c in root[0]} <= {name for name, _ in simulation.fields(272)}
        assert (
            leads_xml(client.get("/", params={"key": "demo-key", "lid": 1})).get("querytotal")
            == "0"
        )


# ---------------------------------------------------------------------------------------------
# Query and sort


def matching(sim: leadexec_sim.Simulation, test: Any) -> list[int]:
    return [sim.lead(1, i)["UID"] for i in range(sim.total(1)) if test(sim.lead(1, i))]


def uids(client: TestClient, **params: Any) -> list[int]:
    body = get(client, JSON, fields="UID", **params).json()
    assert body["SentCount"] == len(body["Leads"])
    return [int(lead["UID"]) for lead in body["Leads"]]


@pytest.mark.parametrize(
    ("query", "test"),
    [
        ({"LoanAmount": {"$gte": 150000}}, lambda x: x.get("LoanAmount", -1) >= 150000),
        ({"LoanAmount": {"$gt": "150000", "$lte": 800000}},
         lambda x: 150000 < x.get("LoanAmount", -1) <= 800000),
        ({"State": "CA"}, lambda x: x.get("State") == "CA"),
        ({"State": {"$in": ["CA", "NV"]}, "OptIn": True},
         lambda x: x.get("State") in ("CA", "NV") and x["OptIn"]),
        ({"Homeowner": {"$ne": "Yes"}}, lambda x: x.get("Homeowner") != "Yes"),
        ({"Comments": None}, lambda x: "Comments" not in x),
        ({"CreditScore": {"$lt": 700.5}}, lambda x: x.get("CreditScore", 1e9) < 700.5),
        ({"LastUpdated": {"$gte": "3/10/2026 12:00:00 PM"}},
         lambda x: x["LastUpdated"] >= wall(2026, 3, 10, 12)),
        ({"$or": [{"State": "TX"}, {"Age": {"$lt": 20}}]},
         lambda x: x.get("State") == "TX" or x.get("Age", 99) < 20),
        ({"gclid": {"$exists": False}, "Income": {"$gte": 100000}},
         lambda x: "gclid" not in x and x.get("Income", 0) >= 100000),
    ],
)  # fmt: skip
def test_query_filters_like_mongodb(leadexec_api, sim, query, test):
    expected = matching(sim, test)
    assert 0 < len(expected) < sim.total(1)
    got = uids(leadexec_api, query=json.dumps(query), take=1000)
    got += uids(leadexec_api, query=json.dumps(query), take=1000, skip=1000)
    assert got == expected


def test_query_applies_inside_the_window(leadexec_api, sim):
    window = (wall(2026, 3, 1), wall(2026, 3, 5))
    query = json.dumps({"State": {"$in": ["CA", "WA", "OR"]}})
    expected = [
        lead["UID"] for lead in sim.leads(1, *window) if lead.get("State") in ("CA", "WA", "OR")
    ]
    assert uids(leadexec_api, query=query, startdate="3/1/2026", enddate="3/5/2026") == expected


@pytest.mark.parametrize(
    "query",
    ["{not json", "[1, 2]", '{"Age": {"$regex": "1"}}', '{"$nor": []}', '{"Age": {"$in": 3}}'],
)
def test_a_bad_query_is_400(leadexec_api, query):
    response = get(leadexec_api, query=query)
    assert response.status_code == 400
    assert etree.fromstring(response.content).tag == "Error"


def test_sortorder_desc_reverses_date_added(leadexec_api, sim):
    body = get(
        leadexec_api,
        JSON,
        sortorder="desc",
        take=10,
        skip=5,
        startdate="3/1/2026",
        enddate="3/3/2026",
    ).json()
    window = sim.index_range(1, wall(2026, 3, 1), wall(2026, 3, 3))
    expected = [str(sim.lead(1, i)["UID"]) for i in reversed(window)][5:15]
    assert [lead["UID"] for lead in body["Leads"]] == expected
    added = [lead["DateAdded"] for lead in body["Leads"]]
    assert added == sorted(added, reverse=True)


def test_sortfields_sorts_on_any_field_missing_first(leadexec_api, sim):
    body = get(leadexec_api, JSON, sortfields="loanamount", take=1000, fields="LoanAmount").json()
    amounts = [lead.get("LoanAmount") for lead in body["Leads"]]
    missing = amounts.count(None)
    assert 0 < missing < 1000
    assert amounts[:missing] == [None] * missing
    assert amounts[missing:] == sorted(amounts[missing:])
    assert get(leadexec_api, sortfields="Nope").status_code == 400


# ---------------------------------------------------------------------------------------------
# Faults


def test_over_the_rate_limit_answers_429_with_retry_after():
    with make_client(rate_limit=0.5) as client:
        assert get(client, take=1).status_code == 200
        response = get(client, take=1)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert client.get("/__health").status_code == 200


def test_fail_rate_one_fails_every_request_with_5xx():
    with make_client(fail_rate=1) as client:
        statuses = {get(client).status_code for _ in range(20)}
        assert statuses == {500, 503}
        assert client.get("/__health").status_code == 200


@pytest.mark.parametrize("take", [0, 1, 250, 1000])
def test_truncate_rate_one_cuts_every_body_short(take):
    with make_client(truncate_rate=1) as client:
        whole = make_client().get("/", params={"key": KEY, "lid": 1, "take": take}).content
        cut = get(client, take=take).content
        assert len(cut) < len(whole)
        assert whole.startswith(cut)
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(cut)
        with pytest.raises(json.JSONDecodeError):
            json.loads(get(client, JSON, take=take).content)


def test_latency_delays_answers():
    with make_client(latency_ms=50) as client:
        started = datetime.now(UTC)
        get(client, take=1)
        assert datetime.now(UTC) - started >= timedelta(milliseconds=50)


# ---------------------------------------------------------------------------------------------
# Scale and the registry


def test_a_million_leads_page_anywhere_without_materialising():
    with make_client(leads=1_000_000, days=90) as client:
        sim = client.app.state.simulation  # type: ignore[attr-defined]
        total = sim.count(1, wall(2026, 1, 1), wall(2026, 2, 1))
        root = leads_xml(get(client, startdate="1/1/2026", enddate="2/1/2026", skip=total - 10))
        assert (root.get("querytotal"), len(root)) == (str(total), 10)
        last = sim.index_range(1, wall(2026, 1, 1), wall(2026, 2, 1))[-1]
        assert root[-1].findtext("UID") == str(sim.lead(1, last)["UID"])


def test_the_registry_exposes_the_simulator_contract():
    module = SIMULATORS["leadexec"]
    assert module is leadexec_sim
    assert "leadexec" in list(SIMULATORS)
    for name, info in module.Settings.model_fields.items():
        assert info.description, name
        assert not info.is_required(), name
    defaults = module.Settings()
    assert (defaults.seed, defaults.leads, defaults.days, defaults.api_key) == (
        1,
        10_000,
        30,
        ["demo-key"],
    )
    assert defaults.timezone == "America/Los_Angeles"


def test_settings_reject_an_unknown_time_zone():
    with pytest.raises(ValueError, match="time zone"):
        leadexec_sim.Settings(timezone="Mars/Olympus")


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        leadexec_sim.create_app(leadexec_sim.Settings(), wall(2026, 1, 1))  # noqa: DTZ001


# -- variants: each plausible form of a reconstructed behaviour -----------------------------------


def test_the_vendors_own_relaxed_query_example_is_read():
    """LeadExec documents ``{ "LoanAmount" : { $gte : 150000, $lte : 200000 } }``: operators
    unquoted, as a .NET reader takes them."""
    with make_client() as client:
        relaxed = get(client, query='{ "LoanAmount" : { $gte : 150000, $lte : 200000 } }')
        strict = get(client, query=json.dumps({"LoanAmount": {"$gte": 150000, "$lte": 200000}}))
    assert relaxed.status_code == 200
    assert relaxed.content == strict.content
    assert 0 < int(leads_xml(relaxed).get("querytotal")) < 2000


def test_bad_key_200_answers_the_error_with_200():
    with make_client(variant=["bad-key-200"]) as client:
        response = get(client, key="wrong")
    assert response.status_code == 200
    assert response.text == "<Error>Invalid API Key</Error>"


def test_dates_required_refuses_a_request_without_them():
    with make_client(variant=["dates-required"]) as client:
        missing_end = get(client, startdate="3/1/2026")
        both = get(client, startdate="3/1/2026", enddate="3/2/2026")
    assert missing_end.status_code == 400
    assert missing_end.text == "<Error>Missing required parameter: enddate</Error>"
    assert both.status_code == 200


def test_xml_without_lastupdated_leaves_it_out_of_xml_only(sim):
    with make_client(variant=["xml-without-lastupdated"]) as client:
        root = leads_xml(get(client, take=50))
        as_json = get(client, JSON, take=50).json()
        queried = get(client, query=json.dumps({"LastUpdated": {"$gte": "3/10/2026"}}), take=0)
    assert len(root) == 50
    assert root.xpath("Lead/LastUpdated") == []
    assert [child.tag for child in root[0]][:8] == [
        "UID", "LeadSource", "DateAdded", "FileUID", "Campaign", "IsValid", "MaxSell", "Price"
    ]  # fmt: skip
    assert all("LastUpdated" in lead for lead in as_json["Leads"])
    expected = sum(lead["LastUpdated"] >= wall(2026, 3, 10) for lead in sim.leads(1))
    assert int(leads_xml(queried).get("querytotal")) == expected


def test_query_dates_as_text_compares_the_xml_spelling_as_text(sim):
    operand = "3/10/2026 12:00:00 PM"
    with make_client(variant=["query-dates-as-text"]) as client:
        root = leads_xml(get(client, query=json.dumps({"LastUpdated": {"$gte": operand}}), take=0))
    as_text = sum(leadexec_sim.format_us(lead["LastUpdated"]) >= operand for lead in sim.leads(1))
    as_dates = sum(lead["LastUpdated"] >= wall(2026, 3, 10, 12) for lead in sim.leads(1))
    assert int(root.get("querytotal")) == as_text != as_dates


def test_variants_are_listed_in_the_command_help():
    from typer.testing import CliRunner

    from leadferry.cli import app

    for name, module in SIMULATORS.items():
        result = CliRunner().invoke(app, ["simulate", name, "--help"], terminal_width=400)
        assert result.exit_code == 0, result.output
        for variant in module.Variant:
            assert variant.value in result.output, (name, variant)
