"""The REST API's connectors and accounts: declarations, adding, rotating, renaming, removing,
testing; secrets never come back out."""

from __future__ import annotations

import pytest

from leadferry.store import DatasetSpec
from tests.conftest import API_KEY
from tests.web.conftest import api_client

NEW_KEY = "le-77aa-rotated-secret-key"


def refuse_secrets(client, *secrets: str):
    """Make every response of *client* fail the test if it carries one of *secrets*."""

    def check(response):
        body = response.read().decode()
        for secret in secrets:
            assert secret not in body, f"{response.request.url} returned a secret"
            assert secret not in str(response.headers)

    client.event_hooks["response"].append(check)
    return client


@pytest.fixture
def editor_api(app, store):
    with api_client(app, store, "eddie") as client:
        yield refuse_secrets(client, API_KEY, NEW_KEY)


def test_connectors_list_their_credential_fields_and_reports(editor_api):
    answer = editor_api.get("/api/v1/connectors")
    assert answer.status_code == 200
    connectors = {c["name"]: c for c in answer.json()["data"]}
    assert set(connectors) == {"leadexec", "salesexec", "avidtrak"}
    api_key = next(f for f in connectors["leadexec"]["fields"] if f["id"] == "api_key")
    assert api_key["secret"] is True
    assert api_key["required"] is True
    leads = next(r for r in connectors["leadexec"]["reports"] if r["slug"] == "leads")
    assert leads["params"] == [
        {
            "id": "lid",
            "label": "LID",
            "type": "integer",
            "required": True,
            "help": leads["params"][0]["help"],
            "lookup": False,
        }
    ]
    assert leads["merge_key"] == ["uid"]
    assert leads["dated"] is True
    assert leads["incremental"] is True
    assert [t["name"] for t in leads["tables"]][0] == "leads"


def test_a_connectors_reports_and_one_report(editor_api):
    reports = editor_api.get("/api/v1/connectors/salesexec/reports").json()
    undated = next(r for r in reports["data"] if r["slug"] == "leads_awaiting_import_count")
    assert undated["dated"] is False
    assert reports["count"] == 6
    report = editor_api.get("/api/v1/connectors/avidtrak/reports/geographical_data")
    assert report.json()["label"] == "Geographical Data"


def test_unknown_connectors_and_reports_are_404(editor_api):
    answer = editor_api.get("/api/v1/connectors/acme")
    assert answer.status_code == 404
    assert "unknown connector 'acme'" in answer.json()["detail"]
    assert editor_api.get("/api/v1/connectors/leadexec/reports/nope").status_code == 404


def test_adding_an_account_returns_it_with_its_secret_masked(editor_api, leadexec_url):
    fields = {"api_key": API_KEY, "base_url": f"{leadexec_url}/"}
    answer = editor_api.post(
        "/api/v1/accounts", json={"name": "acme", "connector": "leadexec", "fields": fields}
    )
    assert answer.status_code == 201
    assert answer.headers["location"] == "/api/v1/accounts/acme"
    shown = answer.json()
    assert (
        shown.pop("last_test").items()
        >= {
            "ok": True,
            "message": "LeadExec accepted the credentials",
        }.items()
    )
    assert shown == {
        "name": "acme",
        "connector": "leadexec",
        "config": {"base_url": f"{leadexec_url}/"},
        "secrets": {"api_key": "••••-key"},
        "secrets_readable": True,
        "datasets": 0,
    }
    listed = editor_api.get("/api/v1/accounts").json()
    assert listed["count"] == 1
    assert listed["data"][0]["secrets"] == {"api_key": "••••-key"}
    assert editor_api.get("/api/v1/accounts/acme").json()["name"] == "acme"


def test_an_account_needs_its_required_fields_and_a_free_name(editor_api):
    missing = editor_api.post(
        "/api/v1/accounts", json={"name": "acme", "connector": "leadexec", "fields": {}}
    )
    assert missing.status_code == 422
    assert "api_key" in missing.json()["detail"]
    fields = {"api_key": API_KEY}
    body = {"name": "acme", "connector": "leadexec", "fields": fields, "test": False}
    assert editor_api.post("/api/v1/accounts", json=body).status_code == 201
    taken = editor_api.post("/api/v1/accounts", json=body)
    assert taken.status_code == 409
    assert "already exists" in taken.json()["detail"]
    unknown = editor_api.post("/api/v1/accounts", json=body | {"connector": "acmesoft"})
    assert unknown.status_code == 404


def test_a_refused_field_value_is_not_echoed_back(editor_api):
    too_long = "k" * 5000
    answer = editor_api.post(
        "/api/v1/accounts",
        json={"name": "acme", "connector": "leadexec", "fields": {"api_key": too_long}},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "fields", "api_key"]
    assert too_long not in answer.text


def test_rotating_a_secret_keeps_the_datasets_working_and_shows_only_its_mask(
    editor_api, store, acme_account
):
    store.create_dataset(
        DatasetSpec(name="leads", account="acme", report="leads", params={"lid": 271})
    )
    answer = editor_api.patch("/api/v1/accounts/acme", json={"fields": {"api_key": NEW_KEY}})
    assert answer.status_code == 200
    assert answer.json()["secrets"] == {"api_key": "••••-key"}
    assert answer.json()["datasets"] == 1
    assert store.get_account("acme").secrets["api_key"].get_secret_value() == NEW_KEY
    assert store.get_dataset("leads").account == "acme"


def test_renaming_an_account_moves_its_datasets(editor_api, store, acme_account):
    store.create_dataset(
        DatasetSpec(name="leads", account="acme", report="leads", params={"lid": 271})
    )
    answer = editor_api.patch("/api/v1/accounts/acme", json={"name": "acme-west"})
    assert answer.status_code == 200
    assert answer.json()["name"] == "acme-west"
    assert store.get_dataset("leads").account == "acme-west"
    assert editor_api.get("/api/v1/accounts/acme").status_code == 404


def test_a_refused_change_changes_nothing(editor_api, store, acme_account):
    answer = editor_api.patch(
        "/api/v1/accounts/acme", json={"name": "acme-west", "fields": {"nope": "1"}}
    )
    assert answer.status_code == 422
    assert "no field 'nope'" in answer.json()["detail"]
    assert store.get_account("acme").name == "acme"
    zone = editor_api.patch("/api/v1/accounts/acme", json={"fields": {"timezone": "Mars/Base"}})
    assert zone.status_code == 422
    assert "unknown time zone" in zone.json()["detail"]


def test_removing_an_account_is_refused_while_datasets_use_it(editor_api, store, acme_account):
    store.create_dataset(
        DatasetSpec(name="leads", account="acme", report="leads", params={"lid": 271})
    )
    refused = editor_api.delete("/api/v1/accounts/acme")
    assert refused.status_code == 409
    assert "used by 1 dataset (leads)" in refused.json()["detail"]
    store.remove_dataset("leads")
    removed = editor_api.delete("/api/v1/accounts/acme")
    assert removed.status_code == 204
    assert removed.content == b""
    assert editor_api.delete("/api/v1/accounts/acme").status_code == 404


def test_testing_a_connection_answers_ok_or_the_vendors_refusal(editor_api, store, leadexec_url):
    editor_api.post(
        "/api/v1/accounts",
        json={
            "name": "good",
            "connector": "leadexec",
            "fields": {"api_key": API_KEY, "base_url": f"{leadexec_url}/"},
        },
    )
    editor_api.post(
        "/api/v1/accounts",
        json={
            "name": "bad",
            "connector": "leadexec",
            "fields": {"api_key": NEW_KEY, "base_url": f"{leadexec_url}/"},
            "test": False,
        },
    )
    assert editor_api.post("/api/v1/accounts/good/test").json() == {
        "ok": True,
        "connector": "LeadExec",
        "error": None,
    }
    refused = editor_api.post("/api/v1/accounts/bad/test")
    assert refused.status_code == 200
    assert refused.json()["ok"] is False
    assert refused.json()["error"] == "LeadExec rejected the API key for account bad"
    assert editor_api.post("/api/v1/accounts/nobody/test").status_code == 404


def test_the_base_url_moves_only_with_the_secret(editor_api, store, acme_account):
    before = store.get_account("acme").config["base_url"]
    alone = editor_api.patch(
        "/api/v1/accounts/acme", json={"fields": {"base_url": "http://127.0.0.1:9/"}}
    )
    assert alone.status_code == 422
    assert "would receive this account's secrets" in alone.json()["detail"]
    assert store.get_account("acme").config["base_url"] == before


def test_an_account_the_vendor_refuses_is_not_added_unless_told_to_skip_the_test(
    editor_api, store, leadexec_url
):
    fields = {"api_key": NEW_KEY, "base_url": f"{leadexec_url}/"}
    body = {"name": "acme", "connector": "leadexec", "fields": fields}

    refused = editor_api.post("/api/v1/accounts", json=body)

    assert refused.status_code == 502
    assert refused.json()["detail"] == (
        "LeadExec rejected the API key for account acme; nothing was saved: correct the "
        'fields, or send "test": false to save the account untested'
    )
    assert store.list_accounts() == []
    untested = editor_api.post("/api/v1/accounts", json=body | {"test": False})
    assert untested.status_code == 201
    assert untested.json()["last_test"] is None
    assert NEW_KEY not in refused.text + untested.text
