"""The Data Center's search, filters and paging, and the History's filters, in a real browser
on a phone: each swaps its list in place and keeps the choice in the URL."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.browser.conftest import WAIT_MS, htmx_swap, log_in
from tests.browser.test_layout_browser import browser_context
from tests.e2e.conftest import account_in_store


def test_search_filter_and_history_filters_on_a_phone(chromium: Browser, service, leadexec_server):
    account_in_store(service.cli, leadexec_server.url)
    for name, description in (
        ("calls_a", "Call center"),
        ("calls_b", "Call center"),
        ("web_a", "Web"),
    ):
        service.cli.ok(
            "datasets", "create", name, "--account", "acme", "--report", "leads",
            "--param", "lid=271", "--description", description,
        )  # fmt: skip
    service.cli.ok("run", "calls_a")
    service.cli.ok("run", "calls_a")
    context = browser_context(chromium, service.url, 390, 844)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        log_in(page, "ada")
        rows = page.get_by_test_id("dataset-row")
        expect(rows).to_have_count(3)
        with htmx_swap(page):
            page.get_by_label("Search").fill("call")
        expect(rows).to_have_count(2)
        expect(page.locator("#dataset-count")).to_contain_text("2 of 3 datasets match")
        assert "q=call" in page.url
        with htmx_swap(page):
            page.locator("#filter-status").select_option("never")
        expect(rows).to_have_count(1)
        expect(page.locator('[data-dataset="calls_b"]')).to_be_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390

        page.goto("/datasets/calls_a")
        history = page.get_by_test_id("history-row")
        expect(history).to_have_count(2)
        expect(history.first).to_have_attribute("data-number", "2")
        with htmx_swap(page):
            page.locator("#history-trigger").select_option("scheduled")
        expect(history).to_have_count(0)
        expect(page.locator("#no-matching-runs")).to_be_visible()
        expect(page.get_by_test_id("data-chart")).to_be_visible()
    finally:
        context.close()
