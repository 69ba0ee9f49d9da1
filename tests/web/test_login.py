"""Logging in and out, sessions, CSRF and throttling."""

from __future__ import annotations

from tests.web.conftest import PASSWORD, log_in


def test_a_page_without_a_session_redirects_to_the_login_form(anonymous):
    answer = anonymous.get("/accounts")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/accounts"


def test_the_api_without_credentials_answers_401(anonymous):
    answer = anonymous.get("/api/v1/datasets")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_even_the_openapi_document_needs_a_login(anonymous, viewer):
    assert anonymous.get("/api/v1/openapi.json").status_code == 401
    document = viewer.get("/api/v1/openapi.json")
    assert document.status_code == 200
    assert "/api/v1/datasets" in document.json()["paths"]


def test_the_session_cookie_is_httponly_and_samesite(app, store):
    browser = log_in(app, store, "ada")
    cookie = next(c for c in browser.cookies.jar if c.name == "leadferry_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite").lower() == "lax"


def test_a_form_post_without_the_csrf_token_is_refused(admin):
    answer = admin.post("/logout")
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert admin.send_form("POST", "/logout").status_code == 303


def test_login_without_the_form_token_is_refused(anonymous):
    anonymous.get("/login")
    answer = anonymous.post("/login", data={"username": "ada", "password": PASSWORD})
    assert answer.status_code == 403


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(anonymous):
    page = anonymous.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = anonymous.post(
        "/login", data={"username": "ada", "password": "nope-nope", "csrf_token": token}
    )
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.text


def test_repeated_failures_throttle_the_login(anonymous):
    token = anonymous.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    codes = [
        anonymous.post(
            "/login", data={"username": "ada", "password": "wrong-guess", "csrf_token": token}
        ).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    # Even the right password waits: the lock is on the name, not the guess.
    answer = anonymous.post(
        "/login", data={"username": "ada", "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 429
    assert "try again in" in answer.text


def test_logging_out_ends_the_session(app, store, admin):
    cookie = admin.cookies["leadferry_session"]
    assert admin.send_form("POST", "/logout").status_code == 303
    assert store.get_session(cookie) is None


def test_login_never_redirects_off_site(app, store):
    browser = log_in(app, store, "ada")
    page = browser.get("/login?next=//evil.example/")
    assert page.headers["location"] == "/"


def test_pages_carry_security_headers(anonymous):
    headers = anonymous.get("/login").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_a_refused_form_value_is_never_echoed(anonymous):
    token = anonymous.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    secret = "p" * 1001 + "-never-shown"
    answer = anonymous.post(
        "/login", data={"username": "ada", "password": secret, "csrf_token": token}
    )
    assert answer.status_code == 422
    assert "invalid input: password" in answer.text
    assert "never-shown" not in answer.text
