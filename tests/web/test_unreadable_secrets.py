"""The web pages and the API when the secret key cannot read an account's secrets (replaced by
another key): lists and pages keep working, the account says so, and rotating recovers it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store, generate_key
from leadferry.web import create_app
from tests.conftest import API_KEY, NOW
from tests.web.conftest import log_in


@pytest.fixture
def other_key_app(settings, store, leadexec_url, vendor_client) -> Iterator:
    """Accounts and a dataset saved under one key (and the users of ``ROLES``, as every web
    test's store has them); the app started with another."""
    store.create_account("acme", "leadexec", {"base_url": f"{leadexec_url}/"}, {"api_key": API_KEY})
    store.create_dataset(DatasetSpec(name="acme_leads", account="acme", report="leads",
                                     params={"lid": 271}))  # fmt: skip
    replaced = Settings(home=settings.home, secret_key=SecretStr(generate_key()))
    with Store.open(replaced) as other:
        app = create_app(replaced, other, clock=lambda: NOW, vendor_client=vendor_client)
        yield app, other
        app.state.scheduler.shutdown()


def test_pages_and_lists_work_and_say_the_secrets_are_unreadable(other_key_app):
    app, store = other_key_app
    with log_in(app, store, "vera") as viewer:
        accounts = viewer.get("/accounts")
        assert accounts.status_code == 200
        assert 'data-testid="secrets-unreadable"' in accounts.text
        account = viewer.get("/accounts/acme")
        assert "unreadable: rotate it" in account.text
        for page in ("/", "/datasets/acme_leads"):
            assert viewer.get(page).status_code == 200, page
        listed = viewer.get("/api/v1/accounts").json()["data"]
        assert [(a["name"], a["secrets_readable"], a["secrets"]) for a in listed] == [
            ("acme", False, {})
        ]
        assert viewer.get("/api/v1/datasets").json()["count"] == 1
        assert viewer.get("/api/v1/datasets/acme_leads/runs").status_code == 200


def test_a_test_connection_says_how_to_recover_and_rotating_does(other_key_app):
    app, store = other_key_app
    with log_in(app, store, "eddie") as editor:
        tested = editor.htmx("POST", "/accounts/acme/test")
        assert tested.status_code == 422
        assert "re-enter them with `leadferry accounts rotate acme`" in tested.text
        rotated = editor.send_form("POST", "/accounts/acme/secret", {"api_key": API_KEY})
        assert rotated.status_code == 303
        assert "ok: LeadExec accepted" in editor.htmx("POST", "/accounts/acme/test").text
        listed = editor.get("/api/v1/accounts").json()["data"]
        assert listed[0]["secrets_readable"] is True
