"""A viewer, in a real browser, sees everything and can change nothing."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.e2e.conftest import account_in_store


def test_a_viewer_sees_datasets_and_accounts_but_cannot_change_them(page, service, leadexec_server):
    account_in_store(service.cli, leadexec_server.url)
    service.cli.ok(
        "datasets", "create", "acme_leads", "--account", "acme", "--report", "leads",
        "--param", "lid=271",
    )  # fmt: skip
    log_in(page, "vera")
    assert page.get_by_text("vera (viewer)").is_visible()
    expect(page.locator('[data-dataset="acme_leads"]')).to_be_visible()
    expect(page.get_by_role("link", name="Add DataSet")).to_have_count(0)
    expect(page.get_by_test_id("run-now")).to_have_count(0)

    page.goto("/datasets/acme_leads")
    expect(page.locator("#dataset-name")).to_have_text("acme_leads")
    for control in ("#run-now", "#edit-dataset", "#delete-dataset"):
        expect(page.locator(control)).to_have_count(0)

    page.goto("/accounts")
    expect(page.locator('[data-account="acme"]')).to_be_visible()
    expect(page.locator("#add-account")).to_have_count(0)
    expect(page.get_by_test_id("test-connection")).to_have_count(0)

    # Even with her own valid CSRF token, every change is refused.
    token = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    for path in (
        "/datasets/acme_leads/run",
        "/datasets/acme_leads/delete",
        "/accounts/acme/remove",
    ):
        answer = page.request.post(
            f"{service.url}{path}", headers={"X-CSRF-Token": token}, max_redirects=0
        )
        assert answer.status == 403, path
    page.goto("/datasets/new")
    expect(page.get_by_role("alert")).to_contain_text("this needs the editor role")
    assert json.loads(service.cli.ok("datasets", "list", "--json"))[0]["last_run"] is None
