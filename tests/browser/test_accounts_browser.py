"""The Accounts page in a real browser: add an account, test its connection, see its mask."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import htmx_swap, log_in, served
from tests.e2e.conftest import E2E_KEY


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One service for the module: each test adds an account of its own name."""
    with served(tmp_path_factory.mktemp("accounts") / "home") as made:
        yield made


def open_add_form(page) -> None:
    """The Accounts page with its Add form open (it starts closed once an account exists)."""
    page.goto("/accounts")
    add = page.locator("#add-account")
    if add.get_attribute("open") is None:
        add.locator(":scope > summary").click()


def add_leadexec_account(page, url: str, name: str = "acme", key: str = E2E_KEY) -> None:
    open_add_form(page)
    page.locator("#name").fill(name)
    # Choosing the connector swaps its fields in: type only into the swapped-in ones.
    with htmx_swap(page):
        page.locator("#connector").select_option("leadexec")
    page.get_by_label("API Key").fill(key)
    page.get_by_text("Advanced").click()
    page.get_by_label("Base URL").fill(url)
    page.locator("#add-account-submit").click()
    page.wait_for_url(re.compile(rf"/accounts/{name}(\?|$)"))


def test_an_editor_adds_an_account_and_tests_its_connection(page, service, leadexec_server, shots):
    log_in(page, "ada")
    add_leadexec_account(page, leadexec_server.url)
    page.goto("/accounts")
    row = page.locator('[data-account="acme"]')
    assert row.get_by_test_id("masked-secret").inner_text().startswith("••••")
    row.get_by_test_id("test-connection").click()
    result = row.get_by_test_id("test-result")
    result.get_by_text("ok: LeadExec accepted the credentials").wait_for()
    page.screenshot(path=shots / "accounts.png", full_page=True)
    assert E2E_KEY not in page.content()


def test_a_wrong_key_is_named_and_never_shown(page, service, leadexec_server):
    log_in(page, "ada")
    # Adding tests the connection first: the refusal is named, and Save anyway keeps it.
    open_add_form(page)
    page.locator("#name").fill("wrong")
    with htmx_swap(page):
        page.locator("#connector").select_option("leadexec")
    page.get_by_label("API Key").fill("not-the-key-123")
    page.get_by_text("Advanced").click()
    page.get_by_label("Base URL").fill(leadexec_server.url)
    page.locator("#add-account-submit").click()
    expect(page.get_by_test_id("add-test-error")).to_contain_text("rejected the API key")
    page.get_by_label("API Key").fill("not-the-key-123")  # a refused secret is never shown back
    page.get_by_test_id("save-anyway").click()
    page.wait_for_url(re.compile(r"/accounts/wrong(\?|$)"))
    page.goto("/accounts")
    row = page.locator('[data-account="wrong"]')
    expect(row.get_by_test_id("last-tested")).to_contain_text("failed")
    row.get_by_test_id("test-connection").click()
    row.get_by_test_id("test-result").get_by_text("rejected the API key").wait_for()
    assert "not-the-key-123" not in page.content()
