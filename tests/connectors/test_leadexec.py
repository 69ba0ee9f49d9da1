"""The LeadExec connector against the LeadExec simulator, in-process."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import httpx2
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from leadferry.connectors.base import Credentials, RetryPolicy
from leadferry.connectors.leadexec import LeadExecConnector
from leadferry.dates import DateSelection
from leadferry.errors import AuthError, FatalAPIError, RetryableAPIError
from tests.conftest import API_KEY, NOW, leadexec_app

NO_WAIT = RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0)
LA = "America/Los_Angeles"
WEEK = DateSelection(days_back=7).resolve(LA, NOW.astimezone(dt.UTC).date())
REPORT = LeadExecConnector.report("leads")


def connect(client, key=API_KEY, retry=NO_WAIT, concurrency=4):
    credentials = Credentials("acme", {"api_key": key, "base_url": "http://leadexec.test/"})
    return LeadExecConnector(client, credentials, concurrency=concurrency, retry=retry)


def fetch_tables(connector, window=WEEK, lid=271):
    tables: dict[str, list[pa.RecordBatch]] = {}
    for item in connector.fetch(REPORT, {"lid": lid}, window):
        tables.setdefault(item.table, []).append(item.batch)
    return {
        name: pa.concat_tables(
            [pa.Table.from_batches([batch]) for batch in batches], promote_options="default"
        )
        for name, batches in tables.items()
    }


def test_every_lead_of_the_window_arrives_once(leadexec_api, leadexec_truth):
    tables = fetch_tables(connect(leadexec_api))
    leads = tables["leads"]
    expected = leadexec_truth.count(271, WEEK.start, WEEK.end)
    assert expected > 2 * LeadExecConnector.page_size  # several pages, fetched concurrently
    assert leads.num_rows == expected
    uids = leads.column("uid").to_pylist()
    assert len(set(uids)) == len(uids)
    added = leads.column("date_added").to_pylist()
    assert min(added) >= WEEK.start
    assert max(added) < WEEK.end


def test_sends_are_a_child_table_keyed_to_their_lead(leadexec_api):
    tables = fetch_tables(connect(leadexec_api))
    sends = tables["lead_sends"]
    assert sends.num_rows > 0
    lead_uids = set(tables["leads"].column("uid").to_pylist())
    assert set(sends.column("lead_uid").to_pylist()) <= lead_uids
    assert sends.schema.field("price").type == pa.decimal128(18, 4)
    assert sends.schema.field("date_sent").type == pa.timestamp("us", tz="UTC")


def test_declared_and_discovered_columns_are_typed(leadexec_api):
    leads = fetch_tables(connect(leadexec_api))["leads"]
    schema = leads.schema
    assert schema.field("uid").type == pa.int64()
    assert schema.field("is_valid").type == pa.bool_()
    assert schema.field("date_added").type == pa.timestamp("us", tz="UTC")
    assert schema.field("price").type == pa.decimal128(18, 4)
    # Lead-type fields are discovered: numbers become numbers, identifiers stay text.
    assert schema.field("first_name").type == pa.string()
    assert schema.field("phone").type == pa.string()
    assert schema.field("zip_postal").type == pa.string()
    assert schema.field("last_updated").type == pa.timestamp("us", tz="UTC")
    numeric = [
        f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    ]
    assert set(numeric) - {"uid", "file_uid", "max_sell"}, "some lead fields should be numeric"


def test_values_match_what_the_vendor_holds(leadexec_api, leadexec_truth):
    tables = fetch_tables(connect(leadexec_api))
    loaded = {row["uid"]: row for row in tables["leads"].to_pylist()}
    sends = {}
    for send in tables["lead_sends"].to_pylist():
        sends.setdefault(send["lead_uid"], []).append(send)
    zone = ZoneInfo(LA)
    truth = list(leadexec_truth.leads(271, WEEK.start, WEEK.end))
    assert [lead["UID"] for lead in truth] == sorted(loaded)
    for lead in truth:
        row = loaded[lead["UID"]]
        # DateAdded is naive Pacific time on the wire; the warehouse holds the instant.
        assert row["date_added"] == lead["DateAdded"].replace(tzinfo=zone)
        assert row["price"] == lead["Price"]
        assert row["is_valid"] == lead["IsValid"]
        assert row["first_name"] == lead.get("FirstName")
        assert row["comments"] == lead.get("Comments")
        assert row["homeowner"] == {"Yes": True, "No": False, None: None}[lead.get("Homeowner")]
        assert len(sends.get(lead["UID"], [])) == len(lead["Sends"])


def test_an_unknown_lid_is_an_empty_report(leadexec_api):
    assert fetch_tables(connect(leadexec_api), lid=999) == {}


def test_a_rejected_key_fails_at_once_and_is_never_echoed(leadexec_api):
    connector = connect(leadexec_api, key="wrong-key-0000")
    with pytest.raises(AuthError) as raised:
        fetch_tables(connector)
    assert str(raised.value) == "LeadExec rejected the API key for account acme"
    with pytest.raises(AuthError):
        connector.check_connection()


def test_check_connection_accepts_a_good_key(leadexec_api):
    connect(leadexec_api).check_connection()


def test_outages_are_retried_until_they_pass():
    _, app = leadexec_app(fail_rate=0.3, seed=7)
    with TestClient(app, base_url="http://leadexec.test") as client:
        retry = RetryPolicy(attempts=12, base_delay=0.0, max_delay=0.0)
        leads = fetch_tables(connect(client, retry=retry))["leads"]
    assert leads.num_rows > 2000


def test_rate_limits_are_honoured_with_retry_after():
    _, app = leadexec_app(rate_limit=20)
    with TestClient(app, base_url="http://leadexec.test") as client:
        retry = RetryPolicy(attempts=20, base_delay=0.0, max_delay=0.2, max_total_wait=30)
        leads = fetch_tables(connect(client, retry=retry, concurrency=4))["leads"]
    assert leads.num_rows > 2000


def test_a_server_that_keeps_failing_gives_up_with_the_url_but_not_the_key():
    _, app = leadexec_app(fail_rate=1.0)
    with (
        TestClient(app, base_url="http://leadexec.test") as client,
        pytest.raises(RetryableAPIError) as raised,
    ):
        fetch_tables(connect(client))
    message = str(raised.value)
    assert "http://leadexec.test/" in message
    assert "gave up after 4 attempts" in message
    assert API_KEY not in message


def test_truncated_xml_is_retried_then_reported():
    _, app = leadexec_app(truncate_rate=1.0)
    with (
        TestClient(app, base_url="http://leadexec.test") as client,
        pytest.raises(RetryableAPIError, match="cut short"),
    ):
        fetch_tables(connect(client))


@pytest.mark.parametrize(
    "failure",
    [httpx2.ReadTimeout("slow"), httpx2.ConnectError("refused"), httpx2.RemoteProtocolError("eof")],
)
def test_network_failures_are_retryable(failure):
    calls = []

    def handler(request):
        calls.append(request)
        raise failure

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    with pytest.raises(RetryableAPIError) as raised:
        fetch_tables(connect(client))
    assert len(calls) == NO_WAIT.attempts
    assert API_KEY not in str(raised.value)


def test_a_bad_request_is_fatal_and_says_what_the_vendor_said():
    client = httpx2.Client(
        transport=httpx2.MockTransport(
            lambda request: httpx2.Response(400, text=f"<Error>Bad date for key {API_KEY}</Error>")
        )
    )
    with pytest.raises(
        FatalAPIError, match="HTTP 400: <Error>Bad date for key \\*\\*\\*\\*"
    ) as raised:
        fetch_tables(connect(client))
    assert API_KEY not in str(raised.value)


def test_a_lead_count_that_disagrees_with_the_body_is_retried():
    body = '<Leads querytotal="2" takecount="1000" sentcount="2"><Lead><UID>1</UID></Lead></Leads>'
    client = httpx2.Client(
        transport=httpx2.MockTransport(lambda r: httpx2.Response(200, text=body))
    )
    with pytest.raises(RetryableAPIError, match="announced 2 leads but held 1"):
        fetch_tables(connect(client))


def test_requests_carry_the_window_as_naive_account_time():
    seen = []

    def handler(request):
        seen.append(request.url.params)
        return httpx2.Response(
            200, text='<Leads querytotal="0" takecount="1000" sentcount="0"></Leads>'
        )

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    fetch_tables(connect(client))
    params = seen[0]
    assert params["startdate"] == "11-16-2026 00:00:00"
    assert params["enddate"] == "11-23-2026 00:00:00"
    assert params["lid"] == "271"
    assert params["take"] == "1000"


def test_a_value_that_does_not_fit_its_column_keeps_its_text_beside_it():
    from leadferry.connectors.columns import BatchBuilder, ColumnTypes
    from leadferry.connectors.leadexec import LEADS

    types = ColumnTypes()
    first = BatchBuilder(LEADS, types, "UTC")
    first.add_rows([{"uid": "1", "age": "41"}, {"uid": "2", "age": "37"}])
    assert first.build().schema.field("age").type == pa.int64()
    later = BatchBuilder(LEADS, types, "UTC")
    later.add_rows([{"uid": "3", "age": "52"}, {"uid": "4", "age": "unknown"}])
    batch = later.build()
    assert batch.column("age").to_pylist() == [52, None]
    assert batch.column("age__v_text").to_pylist() == [None, "unknown"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"Lead type locked for key {API_KEY}", "LeadExec rejected the API key for account acme"),
        ("Lead type 271 is archived", "LeadExec: Lead type 271 is archived"),
    ],
)
def test_an_error_element_in_a_200_answer_is_the_vendors_word(message, expected):
    """A 200 whose body is an <Error> (a service that does not use HTTP statuses) names the key
    when the message is about it, else fails with the vendor's message; never retried."""
    calls = []

    def answer(request):
        calls.append(request)
        return httpx2.Response(200, text=f"<Error>{message}</Error>")

    client = httpx2.Client(transport=httpx2.MockTransport(answer))
    with pytest.raises((AuthError, FatalAPIError)) as error:
        fetch_tables(connect(client))
    assert str(error.value) == expected
    assert len(calls) == 1


def test_a_changed_lead_older_than_the_cursor_fails_the_run():
    """A filter that passes the three-question check but then lets an old lead through."""
    lead = (
        "<Lead><UID>7</UID><DateAdded>11/1/2026 9:00:00 AM</DateAdded>"
        "<LastUpdated>11/2/2026 9:00:00 AM</LastUpdated></Lead>"
    )

    def answer(request):
        query = request.url.params.get("query", "")
        total, body = (0, "") if "$lt" in query else (1, lead)
        return httpx2.Response(
            200, text=f'<Leads querytotal="{total}" sentcount="{total}">{body}</Leads>'
        )

    client = httpx2.Client(transport=httpx2.MockTransport(answer))
    since = dt.datetime(2026, 11, 20, tzinfo=ZoneInfo(LA))
    with pytest.raises(FatalAPIError, match="let through a lead not changed since 2026-11-20"):
        list(connect(client).fetch(REPORT, {"lid": 271}, None, updated_since=since))
