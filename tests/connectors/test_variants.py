"""The clients against every variant their simulators play of a reconstructed behaviour.

Each variant is another plausible answer of the real service (see docs/connectors.md): the client
works against each, or refuses with a message that says what is wrong. Credentials are named as
refused in every variant, without retries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from leadferry.connectors.avidtrak import AvidTrakConnector
from leadferry.connectors.base import Connector, Credentials, RetryPolicy
from leadferry.connectors.leadexec import LeadExecConnector
from leadferry.connectors.salesexec import SalesExecConnector
from leadferry.dates import DateSelection
from leadferry.errors import AuthError
from leadferry.simulators import avidtrak as avidtrak_sim
from leadferry.simulators import leadexec as leadexec_sim
from leadferry.simulators import salesexec as salesexec_sim
from tests.conftest import (
    API_KEY,
    AVIDTRAK_ZONE,
    NOW,
    PIN,
    SALES_PASSWORD,
    SALES_USER,
    avidtrak_app,
    leadexec_app,
    salesexec_app,
)

RETRIES = RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0)
LA = ZoneInfo("America/Los_Angeles")


def variants(module: Any) -> list[Any]:
    """As specified, each variant alone, and all of them at once."""
    return [
        pytest.param([], id="as-specified"),
        *(pytest.param([v], id=v.value) for v in module.Variant),
        pytest.param(list(module.Variant), id="all"),
    ]


@contextmanager
def vendor(make_app: Any, variant: list[Any], base_url: str) -> Iterator[tuple[TestClient, list]]:
    """The simulator in-process, and the list of requests it received."""
    _, app = make_app(variant=variant)
    sent: list[Any] = []
    with TestClient(app, base_url=base_url) as client:
        client.event_hooks["request"].append(sent.append)
        yield client, sent


def connect(cls: type[Connector], client: TestClient, **values: str) -> Connector:
    return cls(client, Credentials("acme", values), retry=RETRIES)


# -- LeadExec ----------------------------------------------------------------------------------


def leadexec(client: TestClient, key: str = API_KEY) -> LeadExecConnector:
    connector = connect(LeadExecConnector, client, api_key=key, base_url="http://le.test/")
    assert isinstance(connector, LeadExecConnector)
    return connector


@pytest.mark.parametrize("variant", variants(leadexec_sim))
def test_leadexec_names_a_rejected_key_in_every_variant(variant):
    with vendor(leadexec_app, variant, "http://le.test") as (client, sent):
        leadexec(client).check_connection()
        refused = leadexec(client, key="wrong-key-0000")
        with pytest.raises(AuthError, match="^LeadExec rejected the API key for account acme$"):
            refused.check_connection()
        week = DateSelection(days_back=7).resolve("America/Los_Angeles", NOW.date())
        with pytest.raises(AuthError, match="^LeadExec rejected the API key for account acme$"):
            list(refused.fetch(LeadExecConnector.report("leads"), {"lid": 271}, week))
    assert len(sent) == 3, "one request each, never retried"


def changed_leads(since: dt.datetime) -> int:
    config, _ = leadexec_app()
    wall = since.astimezone(LA).replace(tzinfo=None)
    truth = leadexec_sim.Simulation(config, now=NOW)
    return sum(1 for lead in truth.leads(271) if lead["LastUpdated"] >= wall)


FALLS_BACK = {
    leadexec_sim.Variant.XML_WITHOUT_LAST_UPDATED: "the answers carry no <LastUpdated>",
    leadexec_sim.Variant.QUERY_DATES_AS_TEXT: "its filter on LastUpdated does not compare dates",
}


@pytest.mark.parametrize("variant", variants(leadexec_sim))
def test_leadexec_changes_are_filtered_or_the_whole_window_loaded_with_a_note(variant):
    since = dt.datetime(2026, 11, 21, 9, 30, tzinfo=LA)
    with vendor(leadexec_app, variant, "http://le.test") as (client, sent):
        connector = leadexec(client)
        rows = sum(
            item.batch.num_rows
            for item in connector.fetch(
                LeadExecConnector.report("leads"), {"lid": 271}, None, updated_since=since
            )
            if item.table == "leads"
        )
    every_request_has_a_window = all(
        {"startdate", "enddate"} <= set(request.url.params) for request in sent
    )
    assert every_request_has_a_window
    doubts = [FALLS_BACK[v] for v in variant if v in FALLS_BACK]
    if not doubts:
        assert connector.note is None
        assert rows == changed_leads(since) > 0
        return
    assert rows == 3000, "every lead of the lead type, since none can be left out"
    assert connector.note is not None
    assert connector.note.startswith(f"LeadExec: {doubts[0]}")
    assert connector.note.endswith(
        "so every lead added since 2000-01-01 was loaded, not only the changes"
    )


# -- SalesExec ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", variants(salesexec_sim))
def test_salesexec_names_rejected_credentials_in_every_variant(variant):
    with vendor(salesexec_app, variant, "http://se.test") as (client, sent):
        good = connect(
            SalesExecConnector, client, username=SALES_USER, password=SALES_PASSWORD,
            base_url=f"http://{'-'.join(variant) or 'spec'}.se.test",  # a token cache of its own
        )  # fmt: skip
        good.check_connection()
        week = DateSelection(days_back=2).resolve("UTC", NOW.date())
        assert any(good.fetch(SalesExecConnector.report("all_leads"), {}, week))
        bad = connect(
            SalesExecConnector, client, username=SALES_USER, password="wrong",
            base_url="http://se.test",
        )  # fmt: skip
        before = len(sent)
        with pytest.raises(AuthError, match="^SalesExec rejected the username or password"):
            bad.check_connection()
    assert len(sent) - before == 1, "a refused login is never retried"


def salesexec_actions(revoke_rate: float) -> tuple[int, int]:
    """Rows of two days of all_actions fetched 100 a page, one request at a time (so that the
    same requests draw the same faults), and the logins it took."""
    # seed 5 drops no token twice in a row at 0.2 (a fresh token dropped again is refused)
    _, app = salesexec_app(revoke_rate=revoke_rate, seed=5)
    with vendor(lambda **_: (None, app), [], "http://se.test") as (client, sent):
        credentials = {
            "username": SALES_USER,
            "password": SALES_PASSWORD,
            "base_url": f"http://revoke-{revoke_rate}.se.test",  # a token cache of its own
        }
        connector = SalesExecConnector(
            client, Credentials("acme", credentials), concurrency=1, retry=RETRIES
        )
        connector.page_size = 100  # many requests, each a chance to find the token gone
        window = DateSelection(days_back=2).resolve("UTC", NOW.date())
        report = SalesExecConnector.report("all_actions")
        rows = sum(item.batch.num_rows for item in connector.fetch(report, {}, window))
    return rows, sum(request.url.path == "/token" for request in sent)


def test_salesexec_logs_in_again_when_the_vendor_drops_its_token_mid_run():
    rows, logins = salesexec_actions(revoke_rate=0.0)
    assert (rows > 0, logins) == (True, 1)
    revoked_rows, relogins = salesexec_actions(revoke_rate=0.2)
    assert revoked_rows == rows
    assert relogins > 1, "a dropped token was renewed"


# -- AvidTrak ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("variant", variants(avidtrak_sim))
def test_avidtrak_names_a_rejected_pin_from_any_envelope(variant, fmt):
    with vendor(avidtrak_app, variant, "http://at.test") as (client, sent):
        values = {"base_url": "http://at.test", "timezone": AVIDTRAK_ZONE, "format": fmt}
        connect(AvidTrakConnector, client, pin_code=PIN, **values).check_connection()
        refused = connect(AvidTrakConnector, client, pin_code="0000-wrong", **values)
        with pytest.raises(AuthError, match="^AvidTrak rejected the pin code for account acme$"):
            refused.check_connection()
        day = DateSelection(days_back=1).resolve(AVIDTRAK_ZONE, NOW.date())
        with pytest.raises(AuthError, match="^AvidTrak rejected the pin code for account acme$"):
            list(refused.fetch(AvidTrakConnector.report("geographical_data"), {}, day))
    assert len(sent) == 3, "one request each, never retried"
