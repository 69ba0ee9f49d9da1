"""Add DataSet for SalesExec in a real browser: the Lead Type UID menu read from the account
offers the vendor's lead types, takes any UID, and works on a phone."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Service, htmx_swap, log_in, served
from tests.browser.test_layout_browser import browser_context, page_width
from tests.e2e.conftest import start_simulator, stop

SALES_PASSWORD = "e2e-sales-pass-5"
PHONE_WIDTH = 390


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    """One service for the module, with a SalesExec simulator and account ``sales`` on it: the
    tests only read the account's menu."""
    simulator = start_simulator("salesexec", "--users", f"ana.ops:{SALES_PASSWORD}")
    try:
        with served(tmp_path_factory.mktemp("lead_type") / "home") as made:
            made.cli.ok("accounts", "add", "sales", "--connector", "salesexec",
                        "--set", "username=ana.ops", "--set", f"base_url={simulator.url}",
                        env={"LEADFERRY_PASSWORD": SALES_PASSWORD})  # fmt: skip
            yield made
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


def test_lead_type_uid_offers_the_vendors_lead_types_and_takes_any(page):
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


def test_the_lead_type_menu_works_on_a_phone(chromium, service, shots):
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
