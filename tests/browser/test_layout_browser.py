"""Every page fits a 390 px phone and a desktop: no sideways page scroll, the nav reachable."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import WAIT_MS, log_in, served
from tests.e2e.conftest import account_in_store

PAGES = (
    "/",
    "/?attention=1",
    "/accounts",
    "/accounts/acme",
    "/tokens",
    "/users",
    "/datasets/acme_leads",
    "/datasets/acme_leads/edit",
    "/datasets/acme_leads/delete",
    "/datasets/new",
    "/no/such/page",
)
NAV = ("Data Center", "Accounts", "Add DataSet", "API tokens", "Users")


def page_width(page: Page) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


@pytest.fixture(scope="module")
def service(tmp_path_factory, leadexec_server):
    """One service with a loaded dataset for both screens: the test only reads its pages."""
    with served(tmp_path_factory.mktemp("layout") / "home") as made:
        account_in_store(made.cli, leadexec_server.url)
        made.cli.ok(
            "datasets", "create", "acme_leads", "--account", "acme", "--report", "leads",
            "--param", "lid=271", "--description", "Every lead of the spring campaign, " * 4,
        )  # fmt: skip
        made.cli.ok("run", "acme_leads")
        yield made


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 860)], ids=["phone", "desktop"])
def test_every_page_fits_the_screen_with_its_nav_in_reach(
    chromium: Browser, service, shots, width, height
):
    context = browser_context(chromium, service.url, width, height)
    page = context.new_page()
    try:
        page.goto("/login")
        assert page_width(page) <= width, "/login"
        log_in(page, "ada")
        for path in PAGES:
            page.goto(path)
            assert page_width(page) <= width, f"{path} is wider than {width} px"
            for link in NAV:
                nav_link = page.locator("header nav").get_by_role("link", name=link, exact=True)
                expect(nav_link).to_be_visible()
                box = nav_link.bounding_box()
                assert box is not None, link
                assert 0 <= box["x"] <= box["x"] + box["width"] <= width, link
        if width < 600:
            page.goto("/")
            page.screenshot(path=shots / "phone-data-center.png", full_page=True)
            page.goto("/datasets/acme_leads")
            page.screenshot(path=shots / "phone-dataset.png", full_page=True)
    finally:
        context.close()


def browser_context(chromium: Browser, url: str, width: int, height: int):
    context = chromium.new_context(
        base_url=url,
        viewport={"width": width, "height": height},
        is_mobile=width < 600,
        has_touch=width < 600,
    )
    context.set_default_timeout(WAIT_MS)
    return context
