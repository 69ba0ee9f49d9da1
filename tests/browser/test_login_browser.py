"""Logging in, in a real browser; what a page refuses without a session or a CSRF token."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in, served


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One service for the module: its tests change no state another reads (each logs in to a
    browser context of its own)."""
    with served(tmp_path_factory.mktemp("login") / "home") as made:
        yield made


def test_nothing_is_visible_before_logging_in(page):
    page.goto("/")
    assert page.url.endswith("/login?next=/")
    assert page.get_by_role("heading", name="Log in").is_visible()


def test_a_wrong_password_shows_an_error_and_the_right_one_logs_in(page, shots):
    page.goto("/login")
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    page.screenshot(path=shots / "login.png")
    log_in(page, "ada")
    assert page.get_by_text("ada (admin)").is_visible()


def test_a_post_without_csrf_token_or_session_is_refused(page, service):
    log_in(page, "ada")
    # The browser's own cookies ride along, as in a cross-site request: no token, refused.
    answer = page.request.post(f"{service.url}/logout", form={"x": "1"}, max_redirects=0)
    assert answer.status == 403
    assert "CSRF" in answer.text()
    page.context.clear_cookies()
    answer = page.request.post(f"{service.url}/logout", form={"x": "1"}, max_redirects=0)
    assert answer.status == 303
    assert answer.headers["location"].startswith("/login")
