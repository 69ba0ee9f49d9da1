"""Add DataSet in a real browser: it starts from the connector, then one of its accounts; each
error sits next to its field, says which field it is about, Load Preview's too, and goes away
once the field is fixed. (SalesExec's Lead Type UID menu: test_lead_type_browser.py.)"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import htmx_swap, log_in, served
from tests.e2e.conftest import account_in_store


@pytest.fixture(scope="module")
def service(tmp_path_factory, leadexec_server):
    """One service for the module, with LeadExec accounts acme and globex and none of another
    connector: the tests only read them (a draft is not saved)."""
    with served(tmp_path_factory.mktemp("wizard") / "home") as made:
        account_in_store(made.cli, leadexec_server.url)
        account_in_store(made.cli, leadexec_server.url, name="globex")
        yield made


def test_errors_sit_next_to_their_fields_and_go_away_when_fixed(page):
    log_in(page, "ada")
    page.goto("/datasets/new")
    page.locator("#next").click()
    expect(page.locator("#step-details")).to_be_visible()

    # A date range with neither date and no LID: Load Preview marks each field.
    with htmx_swap(page):
        page.locator("#duration").select_option("range")
    expect(page.locator("#window")).to_have_text("Choose the start date. Choose the end date.")
    with htmx_swap(page):
        page.locator("#load-preview").click()
    start = page.locator("label[for=start-date]")
    expect(start.locator(".field-error")).to_have_text("Choose the start date.")
    expect(page.locator("label[for=end-date] .field-error")).to_have_text("Choose the end date.")
    expect(page.locator("label[for=param-lid] .field-error")).to_have_text("Enter the LID.")
    expect(page.locator("#preview-error")).to_contain_text("Fix what is marked above")
    expect(page.locator("#start-date")).to_have_attribute("aria-invalid", "true")

    # Fixing a field takes its error away; the others stay until they are fixed too.
    page.locator("#start-date").fill("2026-11-02")
    expect(start.locator(".field-error")).to_have_count(0)
    expect(page.locator("#start-date")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("label[for=end-date] .field-error")).to_be_visible()

    # Next checks the pane again: the remaining errors come back next to their fields.
    page.locator("#next").click()
    expect(page.locator("label[for=end-date] .field-error")).to_have_text("Choose the end date.")
    expect(page.locator("label[for=param-lid] .field-error")).to_have_text("Enter the LID.")
    page.locator("#param-lid").fill("271")
    expect(page.locator("label[for=param-lid] .field-error")).to_have_count(0)
    page.locator("#end-date").fill("2026-11-08")
    expect(page.locator("label[for=end-date] .field-error")).to_have_count(0)
    with htmx_swap(page):
        page.locator("#load-preview").click()
    expect(page.locator("#preview-result")).to_contain_text("Nothing was saved")
    expect(page.locator("#preview-error")).to_have_count(0)
    page.locator("#next").click()
    expect(page.locator("#step-scheduling")).to_be_visible()


def test_add_dataset_starts_from_the_connector_then_its_accounts(page):
    log_in(page, "ada")
    page.goto("/datasets/new")
    connector, account = page.locator("#connector"), page.locator("#account")
    expect(connector).to_have_value("leadexec")  # the first connector with accounts
    expect(account.locator("option")).to_have_text(
        [re.compile(r"^acme \("), re.compile(r"^globex \("), "Add a new LeadExec account…"]
    )
    # Another connector: its accounts (none yet), so the form to add one shows at once.
    with htmx_swap(page):
        connector.select_option("salesexec")
    expect(account).to_have_value("__new__")
    expect(page.locator("#new-account legend")).to_have_text("New SalesExec account")
    expect(page.locator("#acct_username")).to_be_visible()
    # Back to LeadExec, choose globex: Details is for that account.
    with htmx_swap(page):
        connector.select_option("leadexec")
    expect(page.locator("#acct_username")).to_have_count(0)
    account.select_option("globex")
    page.locator("#next").click()
    expect(page.locator("#step-details")).to_contain_text("LeadExec account globex")
