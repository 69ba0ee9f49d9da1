"""The whole journey in a real browser: log in, add an account, create a dataset through the
four panes with a date range, run it, and see the history row and the preview.

The screenshots it takes are the ones the README shows (``make screenshots``).
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import htmx_swap, log_in
from tests.e2e.conftest import E2E_KEY


def test_a_dataset_made_through_the_four_panes_runs_and_shows_its_history(
    page, service, leadexec_server, shots
):
    log_in(page, "ada")
    page.goto("/datasets/new")

    # 1. Credentials: the connector first, then a new account of it, inline.
    expect(page.locator("#step-credentials")).to_be_visible()
    # Each choice swaps in the controls it calls for: fill them once they are there.
    with htmx_swap(page):
        page.locator("#connector").select_option("leadexec")
    expect(page.locator("#account")).to_have_value("__new__")  # it has no accounts yet
    page.locator("#account-name").fill("clickpoint")
    page.locator("#acct_api_key").fill(E2E_KEY)
    page.get_by_text("Advanced").click()
    page.locator("#acct_base_url").fill(leadexec_server.url)
    page.screenshot(path=shots / "1-credentials.png", full_page=True)
    page.locator("#next").click()

    # 2. Details: a date range from 7 days back to yesterday, and Load Preview.
    expect(page.locator("#step-details")).to_be_visible()
    page.locator("#param-lid").fill("271")
    page.locator("#duration").select_option("range")
    page.locator("#start-date-type").select_option("relative")
    page.locator("#start-days-back").fill("7")
    page.locator("#end-date-type").select_option("relative")
    page.locator("#end-days-back").fill("1")
    expect(page.locator("#window")).to_contain_text("(7 days)")
    page.locator("#load-preview").click()
    expect(page.locator("#preview-table")).to_be_visible()
    page.screenshot(path=shots / "2-details.png", full_page=True)
    page.locator("#next").click()

    # 3. Scheduling: every day at 06:00, merge on the report's key; the next five runs show.
    expect(page.locator("#step-scheduling")).to_be_visible()
    page.locator("#frequency").select_option("daily")
    page.locator("#start-time").fill("06:00")
    expect(page.locator("#next-runs li")).to_have_count(5)
    page.locator("#update-method").select_option("merge")
    expect(page.locator("#merge-key")).to_have_value("uid")
    page.screenshot(path=shots / "3-scheduling.png", full_page=True)
    page.locator("#next").click()

    # 4. Name & Describe, then save.
    expect(page.locator("#step-name")).to_be_visible()
    page.locator("#name").fill("clickpoint_week")
    page.locator("#description").fill("Last week's LID 271 leads")
    page.screenshot(path=shots / "4-name.png", full_page=True)
    page.locator("#save").click()
    page.wait_for_url("**/datasets/clickpoint_week")

    # Run it, and see the history row and the preview.
    page.locator("#dataset-status").get_by_test_id("run-now").click()
    row = page.get_by_test_id("history-row").first
    expect(row).to_contain_text("success", timeout=90_000)
    expect(row).to_contain_text("manual")
    page.reload()
    expect(page.get_by_test_id("preview-row").first).to_be_visible()
    page.screenshot(path=shots / "dataset.png", full_page=True)
    page.goto("/")
    expect(page.locator('[data-dataset="clickpoint_week"]')).to_contain_text("success")
    page.screenshot(path=shots / "data-center.png", full_page=True)
    assert E2E_KEY not in page.content()
