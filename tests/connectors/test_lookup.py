"""Lookups: the values a vendor offers for a parameter, read with an account's credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from leadferry.connectors import CONNECTORS
from leadferry.connectors.base import Credentials, RetryPolicy
from leadferry.connectors.salesexec import SalesExecConnector
from leadferry.errors import AuthError, NotFoundError
from tests.conftest import NOW, SALES_PASSWORD, SALES_USER, salesexec_app

ONE_TRY = RetryPolicy(attempts=1)


@pytest.fixture(scope="module")
def salesexec_api() -> Iterator[TestClient]:
    _, app = salesexec_app()
    with TestClient(app, base_url="http://se.test") as client:
        yield client


def connector(client: TestClient, password: str = SALES_PASSWORD) -> SalesExecConnector:
    values = {"username": SALES_USER, "password": password, "base_url": "http://se.test"}
    return SalesExecConnector(client, Credentials("acme", values), retry=ONE_TRY)


def every_lead(client: TestClient, **query: object) -> list[dict[str, object]]:
    token = client.post(
        "/token",
        data={"grant_type": "password", "username": SALES_USER, "password": SALES_PASSWORD},
    ).json()["access_token"]
    rows: list[dict[str, object]] = []
    page = 1
    while True:
        answer = client.get(
            "/api/Leads",
            params={
                "startDate": "2026-01-01",
                "endDate": "2026-12-31",
                "pageSize": 1000,
                "page": page,
                **query,
            },  # fmt: skip
            headers={"AuthToken": token},
        ).json()
        rows += answer["Results"]
        if page * 1000 >= answer["TotalCount"]:
            return rows
        page += 1


def test_salesexec_lists_the_lead_types_of_its_leads_by_name(salesexec_api):
    choices = connector(salesexec_api).look_up("lead_type_uid", NOW)

    leads = every_lead(salesexec_api)
    named = {(str(row["LeadTypeUID"]), row["LeadTypeName"]) for row in leads}
    assert set(choices) == named
    assert len({value for value, _ in choices}) == len(choices)  # one name per UID
    assert [label.casefold() for _, label in choices] == sorted(
        label.casefold() for _, label in choices
    )
    value, label = choices[0]
    # A value is what the report's filter takes: it selects the leads of that type.
    filtered = every_lead(salesexec_api, leadTypeUID=value)
    assert filtered
    assert {row["LeadTypeName"] for row in filtered} == {label}


def test_a_refused_login_is_an_auth_error_naming_no_secret(salesexec_api):
    with pytest.raises(AuthError) as refused:
        connector(salesexec_api, password="wrong-pass-1").look_up("lead_type_uid", NOW)
    assert "wrong-pass-1" not in str(refused.value)
    assert "acme" in str(refused.value)


def test_a_parameter_without_a_lookup_is_refused_naming_those_with_one(salesexec_api):
    with pytest.raises(NotFoundError, match="parameters with a list: lead_type_uid"):
        connector(salesexec_api).look_up("lid", NOW)


@pytest.mark.parametrize("name", ["leadexec", "avidtrak"])
def test_leadexec_and_avidtrak_declare_no_lookup(name):
    declared = [p for r in CONNECTORS[name].reports for p in r.params if p.lookup]
    assert declared == []
    with pytest.raises(NotFoundError, match="none"):
        CONNECTORS[name].lookup_param("lid")
