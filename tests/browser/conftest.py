"""Real headless Chromium (Debian's package, driven by Playwright) against a real
`leadferry serve` process and a `leadferry simulate leadexec` process, all on loopback.

Set ``LEADFERRY_SCREENSHOTS=docs/screenshots`` to keep the screenshots the tests take
(``make screenshots``); otherwise they go to the test's temp folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.e2e.conftest import (  # noqa: F401 (leadexec_server is a fixture)
    E2E_PASSWORD,
    Leadferry,
    leadexec_server,
    serving,
)

# Generous waits: CI machines are small and busy; a wait ends as soon as its condition holds.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)

# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("LEADFERRY_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError(
            "browser tests need Chromium: apt-get install chromium (or set LEADFERRY_CHROMIUM)"
        )
    return path


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Service:
    url: str
    cli: Leadferry


@contextlib.contextmanager
def served(home: Path) -> Iterator[Service]:
    """`leadferry serve` of *home* with an admin (ada) and a viewer (vera)."""
    cli = Leadferry(home)
    with serving(cli, "--workers", "2") as url:
        yield Service(url, cli)


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    """A service of the test's own. A module whose tests change nothing another of them reads
    overrides it with one of the module's (``served``): a serve costs seconds of CPU to start."""
    with served(tmp_path / "home") as made:
        yield made


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, chromium: Browser, service: Service, tmp_path) -> Iterator[Page]:
    context = chromium.new_context(base_url=service.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # What the browser showed when the test failed: the first thing to look at in CI.
        failure = tmp_path / "failure.png"
        opened.screenshot(path=failure, full_page=True)
        print(f"the page at {opened.url} when the test failed: {failure}")
    context.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("LEADFERRY_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def htmx_swap(page: Page) -> Iterator[None]:
    """Wait, after the block, until htmx has swapped in (and settled) what the block asked for.

    Waiting for the response is not enough: htmx swaps it in a moment later, and text typed
    into the old controls in between would be lost.
    """
    page.evaluate(
        "() => { window.leadferrySwapped = new Promise(done => document.body.addEventListener("
        "'htmx:afterSettle', () => done(true), {once: true})); }"
    )
    yield
    page.evaluate("() => window.leadferrySwapped")


def log_in(page: Page, name: str, password: str = E2E_PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
