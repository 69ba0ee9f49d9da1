"""Add DataSet in a real browser: it starts from the connector, then one of its accounts; each
error sits next to its field, says which field it is about, Load Preview's too, and goes away
once the field is fixed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import htmx_swap, log_in
from tests.browser.test_layout_browser import browser_context, page_width
from tests.e2e.conftest import add_account, start_simulator, stop

SALES_PASSWORD = "e2e-sales-pass-5"
PHONE_WIDTH = 390


def test_errors_sit_next_to_their_fields_and_go_away_when_fixed(page, service, leadexec_server):
    add_account(service.cli, leadexec_server.url)
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


def test_add_dataset_starts_from_the_connector_then_its_accounts(page, service, leadexec_server):
    add_account(service.cli, leadexec_server.url)
    add_account(service.cli, leadexec_server.url, name="globex")
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


@pytest.fixture
def sales(service) -> Iterator[None]:
    """A SalesExec simulator and account ``sales`` on it."""
    simulator = start_simulator("salesexec", "--users", f"ana.ops:{SALES_PASSWORD}")
    try:
        service.cli.ok("accounts", "add", "sales", "--connector", "salesexec",
                       "--set", "username=ana.ops", "--set", f"base_url={simulator.url}",
                       env={"LEADFERRY_PASSWORD": SALES_PASSWORD})  # fmt: skip
        yield
    finally:
        stop(simulator)


def open_lead_type_menu(page: Page) -> Locator:
    """Add DataSet for SalesExec up to its Details pane, once the Lead Type UID menu is read."""
    log_in(page, "ada")
    page.goto("/datasets/new")
    with htmx_swap(page):
        page.locator("#connector").select_option("salesexec")
    page.locator("#next").click()
    expect(page.locator("#step-details")).to_be_visible()
    lookup = page.locator("#lookup-lead_type_uid")
    expect(lookup).to_contain_text("Lead Type UID values read from account sales")
    return lookup


def test_lead_type_uid_offers_the_vendors_lead_types_and_takes_any(page, service, sales):
    open_lead_type_menu(page)
    # The menu arrives for the account: the input offers it, and still takes any UID.
    control = page.locator("#param-lead_type_uid")
    expect(control).to_have_attribute("list", "lookup-lead_type_uid-choices")
    choices = page.locator("#lookup-lead_type_uid-choices option")
    expect(choices.first).to_have_attribute("value", re.compile(r"^\d+$"))
    assert choices.count() >= 1
    assert all(text.strip() for text in choices.all_text_contents())
    control.fill("999999")
    expect(control).to_have_value("999999")
    assert SALES_PASSWORD not in page.content()


def within(locator: Locator, width: int) -> bool:
    box = locator.bounding_box()
    return box is not None and 0 <= box["x"] <= box["x"] + box["width"] <= width


def test_the_lead_type_menu_works_on_a_phone(chromium, service, sales, shots):
    context = browser_context(chromium, service.url, PHONE_WIDTH, 844)
    page = context.new_page()
    try:
        lookup = open_lead_type_menu(page)
        assert page_width(page) <= PHONE_WIDTH, "the Details pane scrolls sideways"
        control = page.locator("#param-lead_type_uid")
        expect(control).to_have_attribute("list", "lookup-lead_type_uid-choices")
        again = lookup.get_by_role("button", name="Read again")
        for part in (control, lookup.locator(".help"), again):
            expect(part).to_be_visible()
            assert within(part, PHONE_WIDTH), part
        # A lead type of the menu is taken as typed on the phone's keyboard.
        first = page.locator("#lookup-lead_type_uid-choices option").first
        value = first.get_attribute("value")
        assert value is not None
        assert value.isdigit()
        control.tap()
        control.press_sequentially(value)
        expect(control).to_have_value(value)
        # Read again swaps in a fresh menu, and the page still fits.
        with htmx_swap(page):
            again.tap()
        expect(lookup).to_contain_text("Lead Type UID values read from account sales")
        expect(page.locator("#lookup-lead_type_uid-choices option").first).to_have_attribute(
            "value", value
        )
        expect(control).to_have_value(value)
        assert page_width(page) <= PHONE_WIDTH, "the Details pane scrolls sideways"
        page.screenshot(path=shots / "phone-lead-type-menu.png", full_page=True)
    finally:
        context.close()
