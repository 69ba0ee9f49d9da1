"""Every [confirmed] fact of specs/vendor-apis.md sections 2 (SalesExec) and 3 (AvidTrak), pinned
by values written here from the spec, never taken from the simulators' or the clients' constants.

Each fact runs against the simulator over HTTP and, where the client relies on it, through the
client against every variant the simulator plays; envelope codes the simulator cannot be made to
send (3, 6 and 404 for a client that always names its method and pin) come as the spec writes
them. docs/connectors.md numbers the facts (S1..S4, A1..A15) and names the test of each.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from leadferry.connectors.avidtrak import AvidTrakConnector
from leadferry.connectors.base import Connector, Credentials, RetryPolicy
from leadferry.connectors.salesexec import SalesExecConnector
from leadferry.dates import DateSelection, DateWindow
from leadferry.errors import AuthError, FatalAPIError
from leadferry.simulators import avidtrak as avidtrak_sim
from leadferry.simulators import salesexec as salesexec_sim
from tests.conftest import (
    AVIDTRAK_ZONE,
    NOW,
    PIN,
    SALES_PASSWORD,
    SALES_USER,
    avidtrak_app,
    salesexec_app,
)

ONE_TRY = RetryPolicy(attempts=1)
SEVEN_DIGITS_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z")
SOAP_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
NY = ZoneInfo(AVIDTRAK_ZONE)


def variants(module: Any) -> list[Any]:
    return [
        pytest.param([], id="as-specified"),
        *(pytest.param([v], id=v.value) for v in module.Variant),
    ]


def load(connector: Connector, slug: str, window: DateWindow | None) -> pa.Table | None:
    batches = [item.batch for item in connector.fetch(connector.report(slug), {}, window)]
    if not batches:
        return None
    return pa.concat_tables(
        [pa.Table.from_batches([b]) for b in batches], promote_options="default"
    )


# -- SalesExec ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def salesexec() -> Iterator[TestClient]:
    _, app = salesexec_app()
    with TestClient(app, base_url="http://se.test") as client:
        answer = client.post(
            "/token",
            data={"grant_type": "password", "username": SALES_USER, "password": SALES_PASSWORD},
        )
        client.headers["AuthToken"] = answer.json()["access_token"]
        yield client


def sales_rows(api: TestClient, path: str) -> list[dict[str, Any]]:
    answer = api.get(
        path, params={"startDate": "2026-11-20", "endDate": "2026-11-21", "pageSize": 1000}
    )
    assert answer.status_code == 200
    return answer.json()["Results"]


def test_s1_the_rest_api_lives_at_restapi_sales_exec_net():
    assert SalesExecConnector.field("base_url").default == "https://restapi.sales-exec.net"


@pytest.mark.parametrize("variant", variants(salesexec_sim))
def test_s2_to_s4_the_vendor_s_names_and_utc_stamps_reach_the_warehouse(salesexec, variant):
    raw = sales_rows(salesexec, "/api/Leads")
    actions = sales_rows(salesexec, "/api/Actions")
    # S2: the webhook's names; S4: lead types, sources, campaigns, stages, statuses, branches,
    # and actions with their dispositions
    for name in ("LeadGuid", "LifeCycleStageName", "LeadStatusName", "LeadTypeName",
                 "LeadSourceName", "CampaignName", "BranchName"):  # fmt: skip
        assert all(name in row for row in raw), name
    assert all("DispositionName" in row and "BranchName" in row for row in actions)
    # S3: UTC with seven fractional digits
    assert all(SEVEN_DIGITS_UTC.fullmatch(row["CreatedUtc"]) for row in raw)
    _, app = salesexec_app(variant=variant)
    with TestClient(app, base_url="http://se.test") as client:
        values = {"username": SALES_USER, "password": SALES_PASSWORD,
                  "base_url": f"http://{'-'.join(variant) or 'spec'}.facts.test"}  # fmt: skip
        connector = SalesExecConnector(client, Credentials("acme", values), retry=ONE_TRY)
        day = DateSelection(date="2026-11-20").resolve("UTC", NOW.date())
        table = load(connector, "all_leads", day)
    assert table is not None
    loaded = {row["lead_guid"]: row for row in table.to_pylist()}
    assert len(loaded) == len(raw)
    for row in raw:
        got = loaded[row["LeadGuid"]]
        stamp = row["CreatedUtc"]
        assert got["created_utc"] == dt.datetime.fromisoformat(stamp[:26]).replace(tzinfo=dt.UTC)
        assert got["life_cycle_stage_name"] == row["LifeCycleStageName"]
        assert got["lead_status_name"] == row["LeadStatusName"]
        assert got["branch_name"] == row["BranchName"]


# -- AvidTrak: what the service answers ----------------------------------------------------------


@pytest.fixture(scope="module")
def avidtrak() -> Iterator[TestClient]:
    _, app = avidtrak_app()
    with TestClient(app, base_url="http://at.test") as client:
        yield client


def avid(api: TestClient, path: str = "/reseller/webservice/api.php", **params: Any) -> Any:
    day = {"startdate": "2026-11-20 00:00:00", "enddate": "2026-11-20 23:59:59"}
    query = {"pincode": PIN, "method": "offline_portal_calls", "format": "json", **day} | params
    return api.get(path, params={k: v for k, v in query.items() if v is not None})


def test_a1_a2_one_endpoint_under_any_base_and_the_method_in_a_parameter(avidtrak):
    assert AvidTrakConnector.field("base_url").required
    calls = avid(avidtrak, perpage=2).json()
    geo = avid(avidtrak, "/webservice/api.php", method="geo_data", perpage=2).json()
    assert calls["data"][0].keys() != geo["data"][0].keys()


def test_a3_json_success_envelope(avidtrak):
    body = avid(avidtrak, perpage=3).json()
    assert list(body) == ["code", "status", "data"]
    assert (body["code"], body["status"]) == (200, "Success")
    assert isinstance(body["data"], list)
    assert len(body["data"]) == 3
    assert body["data"][0]["channel"] == "PORTAL"
    assert "campaign" in body["data"][0]


def test_a4_xml_success_envelope(avidtrak):
    text = avid(avidtrak, perpage=1, format="xml").text
    assert re.search(r"<response><code>1</code><status>Success</status><data><row><call_id>", text)


def test_a5_json_error_envelope(avidtrak):
    assert avid(avidtrak, pincode="0000-wrong").json() == {
        "code": 401, "status": "Authentication Failed", "data": None
    }  # fmt: skip


def test_a6_documented_codes(avidtrak):
    xml_code = re.compile(r"<code>(\d+)</code><status>([^<]*)</status>")
    assert xml_code.search(avid(avidtrak, format="xml", pincode="x").text).groups() == (
        "4", "Authentication Failed"
    )  # fmt: skip
    assert xml_code.search(avid(avidtrak, format="xml", pincode=None).text).groups() == (
        "3", "Authentication Required"
    )  # fmt: skip
    assert xml_code.search(avid(avidtrak, format="xml", method="nope").text).groups() == (
        "404", "Invalid Request Method"
    )  # fmt: skip
    assert avid(avidtrak, format="yaml").json()["code"] == 6
    empty = avid(avidtrak, startdate="2026-01-05 00:00:00", enddate="2026-01-05 23:59:59")
    assert empty.json() == {"code": 0, "status": "Unknown Error", "data": None}


def test_a13_to_a15_the_soap_api_s_paging_ordering_and_lite_calls(avidtrak):
    first = avid(avidtrak).json()["data"]
    assert len(first) == 20, "perpage defaults to 20"
    assert avid(avidtrak, page=1).json()["data"] == first, "page starts at 1, the default"
    second = avid(avidtrak, page=2).json()["data"]
    assert {r["call_id"] for r in first}.isdisjoint(r["call_id"] for r in second)
    desc = avid(avidtrak, orderby="duration", ordertype="desc", perpage=1000).json()["data"]
    assert [int(r["duration"]) for r in desc] == sorted((int(r["duration"]) for r in desc),
                                                        reverse=True)  # fmt: skip
    assert avid(avidtrak, method="all_lite_calls").json()["data"] == first


# -- AvidTrak: what the client sends and how it reads every envelope ---------------------------


@contextmanager
def avidtrak_client(
    variant: list[Any], fmt: str, pin: str = PIN
) -> Iterator[tuple[AvidTrakConnector, list[Any]]]:
    _, app = avidtrak_app(variant=variant)
    sent: list[Any] = []
    with TestClient(app, base_url="http://at.test") as client:
        client.event_hooks["request"].append(sent.append)
        values = {"pin_code": pin, "base_url": "http://at.test/resold/calls",
                  "timezone": AVIDTRAK_ZONE, "format": fmt}  # fmt: skip
        yield AvidTrakConnector(client, Credentials("acme", values), retry=ONE_TRY), sent


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("variant", variants(avidtrak_sim))
def test_a1_a2_a6_a7_a12_the_client_asks_the_endpoint_and_reads_every_success(variant, fmt):
    day = DateSelection(date="2026-11-20").resolve(AVIDTRAK_ZONE, NOW.date())
    long_ago = DateSelection(date="2026-01-05").resolve(AVIDTRAK_ZONE, NOW.date())
    with avidtrak_client(variant, fmt) as (connector, sent):
        table = load(connector, "offline_portal_calls", day)
        assert load(connector, "offline_portal_calls", long_ago) is None  # A7: code 0, no rows
    assert table is not None
    assert table.num_rows > 0
    assert min(table.column("call_date").to_pylist()) >= day.start
    for request in sent:
        assert request.url.path == "/resold/calls/webservice/api.php"
        params = request.url.params
        assert (params["pincode"], params["format"]) == (PIN, fmt)
        assert params["method"] == "offline_portal_calls"
        assert SOAP_DATE.fullmatch(params["startdate"])
        assert SOAP_DATE.fullmatch(params["enddate"])
    assert sent[0].url.params["page"] == "1"
    assert sent[0].url.params["startdate"] == "2026-11-20 00:00:00"
    assert sent[0].url.params["enddate"] == "2026-11-20 23:59:59"


def literal_vendor(
    fmt: str, code: int, status: str, published: bool, calls: list[Any]
) -> httpx2.Client:
    """A service answering every call with the error envelope the spec writes; *calls* gets
    each request."""
    if fmt == "json":
        body = json.dumps({"code": code, "status": status, "data": None})
    else:
        data = "<data><data/>" if published else "<data/>"
        body = f"<response><code>{code}</code><status>{status}</status>{data}</response>"

    def answer(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(200, text=body)

    return httpx2.Client(transport=httpx2.MockTransport(answer))


ERRORS = [
    pytest.param(fmt, published, id=f"{fmt}{'-published' if published else ''}")
    for fmt, published in (("json", False), ("xml", False), ("xml", True))
]


@pytest.mark.parametrize(("fmt", "published"), ERRORS)
@pytest.mark.parametrize(
    ("code", "status"),
    [(3, "Authentication Required"), (4, "Authentication Failed"), (401, "Authentication Failed")],
)
def test_a8_a9_codes_3_4_and_401_name_the_pin_code(fmt, published, code, status):
    values = {"pin_code": PIN, "base_url": "http://at.test", "format": fmt}
    calls: list[Any] = []
    client = literal_vendor(fmt, code, status, published, calls)
    connector = AvidTrakConnector(client, Credentials("acme", values), retry=RetryPolicy())
    with pytest.raises(AuthError, match="^AvidTrak rejected the pin code for account acme$"):
        connector.check_connection()
    assert len(calls) == 1, "never retried"


@pytest.mark.parametrize(("fmt", "published"), ERRORS)
@pytest.mark.parametrize(
    ("code", "status"), [(6, "Invalid Response Format"), (404, "Invalid Request Method")]
)
def test_a10_a11_codes_6_and_404_fail_with_their_meaning(fmt, published, code, status):
    values = {"pin_code": PIN, "base_url": "http://at.test", "format": fmt}
    calls: list[Any] = []
    connector = AvidTrakConnector(
        literal_vendor(fmt, code, status, published, calls), Credentials("acme", values)
    )
    day = DateWindow(dt.datetime(2026, 11, 20, tzinfo=NY), dt.datetime(2026, 11, 21, tzinfo=NY))
    with pytest.raises(
        FatalAPIError, match=f"^AvidTrak: code {code} \\({status}\\) for report geographical_data$"
    ):
        load(connector, "geographical_data", day)
    assert len(calls) == 1, "never retried"
