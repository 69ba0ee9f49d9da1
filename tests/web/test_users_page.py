"""The Users page: admins add users, change roles, reset passwords and remove users."""

from __future__ import annotations

import html
import re

from tests.web.conftest import PASSWORD
from tests.web.test_accounts_page import error_next_to

NEW_PASSWORD = "battery-staple-77"


def user_row(page: str, name: str) -> str:
    row = re.search(rf'<tr id="user-{re.escape(name)}".*?</tr>', page, re.S)
    assert row, f"no row for user {name}"
    return row.group(0)


def test_the_list_shows_each_user_with_role_and_creation(admin, store):
    page = admin.get("/users")
    assert page.status_code == 200
    for name, role in (("ada", "admin"), ("eddie", "editor"), ("vera", "viewer")):
        row = user_row(page.text, name)
        assert re.search(rf'<option value="{role}" selected>', row)
        assert store.get_user(name).created_at.strftime("%Y-%m-%d %H:%M UTC") in row
    assert '<span class="badge">you</span>' in user_row(page.text, "ada")


def test_only_admins_may_open_or_use_the_users_page(editor, viewer, store):
    for browser in (editor, viewer):
        for method, url, data in (
            ("GET", "/users", None),
            ("POST", "/users", {"name": "mallory", "role": "admin", "password": NEW_PASSWORD}),
            ("POST", "/users/vera/role", {"role": "admin"}),
            ("POST", "/users/ada/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
            ("POST", "/users/ada/remove", {}),
        ):
            answer = browser.send_form(method, url, data) if data is not None else browser.get(url)
            assert answer.status_code == 403, url
            assert "this needs the admin role" in answer.text
    assert [(u.name, u.role) for u in store.list_users()] == [
        ("ada", "admin"),
        ("eddie", "editor"),
        ("vera", "viewer"),
    ]
    assert store.authenticate("ada", PASSWORD) is not None
    assert 'href="/users"' not in editor.get("/tokens").text


def test_adding_a_user(admin, store):
    answer = admin.htmx(
        "POST",
        "/users",
        data={"name": "bob", "role": "editor", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert answer.status_code == 200
    assert "Added bob as editor." in answer.text
    assert "<html" not in answer.text  # the panel only, swapped into the page
    assert re.search(r'<option value="editor" selected>', user_row(answer.text, "bob"))
    assert store.authenticate("bob", NEW_PASSWORD).role == "editor"
    assert NEW_PASSWORD not in answer.text


def test_each_rule_a_new_user_breaks_is_shown_next_to_its_field(admin, store):
    short = admin.send_form(
        "POST", "/users", {"name": "bob", "role": "viewer", "password": "short", "confirm": "short"}
    )
    assert short.status_code == 422
    assert error_next_to(short.text, "new-password") == "a password needs at least 8 characters"
    assert 'value="bob"' in short.text  # what was typed stays, except the password

    differ = admin.htmx(
        "POST",
        "/users",
        data={"name": "bob", "role": "viewer", "password": NEW_PASSWORD, "confirm": "other-one-9"},
    )
    assert differ.status_code == 422
    assert "two passwords differ" in error_next_to(differ.text, "new-confirm")

    wrong = admin.send_form(
        "POST",
        "/users",
        {"name": "eddie", "role": "boss", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert error_next_to(wrong.text, "new-role") == (
        "unknown role 'boss': use one of viewer, editor, admin"
    )
    taken = admin.send_form(
        "POST",
        "/users",
        {"name": "eddie", "role": "viewer", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert error_next_to(taken.text, "new-name") == "a user named 'eddie' already exists"
    for body in (short.text, differ.text, wrong.text, taken.text):
        assert NEW_PASSWORD not in body
    assert [u.name for u in store.list_users()] == ["ada", "eddie", "vera"]


def test_changing_a_role_applies_at_once(admin, viewer, store):
    assert viewer.send_form("POST", "/accounts/nope/remove").status_code == 403
    answer = admin.htmx("POST", "/users/vera/role", data={"role": "editor"})
    assert answer.status_code == 200
    assert "vera is now an editor." in answer.text
    assert store.get_user("vera").role == "editor"
    # The same session may now try: the account is missing, the role no longer is.
    assert viewer.send_form("POST", "/accounts/nope/remove").status_code == 404


def test_the_last_admin_cannot_be_demoted_or_removed(admin, store):
    demoted = admin.htmx("POST", "/users/ada/role", data={"role": "viewer"})
    assert demoted.status_code == 422
    message = html.unescape(user_row(demoted.text, "ada"))
    assert "user 'ada' is the last admin: make another user admin first" in message
    removed = admin.send_form("POST", "/users/ada/remove")
    assert removed.status_code == 422
    error = re.search(r'id="remove-ada-error">(.*?)</span>', removed.text).group(1)
    assert html.unescape(error).startswith("user 'ada' is the last admin")
    assert store.get_user("ada").role == "admin"


def test_resetting_a_password_ends_the_users_sessions(admin, viewer, store):
    answer = admin.htmx(
        "POST", "/users/vera/password", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert answer.status_code == 200
    assert "Password of vera changed: their sessions ended." in answer.text
    assert store.authenticate("vera", NEW_PASSWORD) is not None
    assert store.authenticate("vera", PASSWORD) is None
    assert viewer.get("/tokens").headers["location"] == "/login?next=/tokens"

    differ = admin.htmx(
        "POST", "/users/eddie/password", data={"password": NEW_PASSWORD, "confirm": "nope-nope-1"}
    )
    assert differ.status_code == 422
    assert "two passwords differ" in error_next_to(differ.text, "confirm-eddie")
    short = admin.send_form("POST", "/users/eddie/password", {"password": "abc", "confirm": "abc"})
    assert "at least 8 characters" in error_next_to(short.text, "password-eddie")
    assert store.authenticate("eddie", PASSWORD) is not None


def test_resetting_your_own_password_logs_you_out(admin, store):
    answer = admin.htmx(
        "POST", "/users/ada/password", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert answer.headers["HX-Redirect"] == "/login"
    assert store.authenticate("ada", NEW_PASSWORD) is not None


def test_removing_a_user(admin, store):
    store.create_token("eddie", "ci")
    answer = admin.htmx("POST", "/users/eddie/remove")
    assert answer.status_code == 200
    assert "Removed eddie." in answer.text
    assert 'id="user-eddie"' not in answer.text
    assert [u.name for u in store.list_users()] == ["ada", "vera"]
    assert store.list_tokens() == []
    assert admin.htmx("POST", "/users/eddie/remove").status_code == 404


def test_every_users_form_carries_its_csrf_token(admin):
    page = admin.get("/users").text
    forms = re.findall(r"<form .*?</form>", page, re.S)
    assert len(forms) == 1 + 3 * 3 + 1  # log out, three forms per user, add a user
    for form in forms:
        assert f'name="csrf_token" value="{admin.csrf}"' in form
    refused = admin.post("/users/vera/remove")
    assert refused.status_code == 403
    assert "CSRF" in refused.text


def test_an_admin_who_demotes_or_removes_themselves_leaves_the_page(admin, store):
    store.add_user("bob", NEW_PASSWORD, "admin")
    demoted = admin.htmx("POST", "/users/ada/role", data={"role": "editor"})
    assert demoted.headers["HX-Redirect"] == "/"
    assert store.get_user("ada").role == "editor"
    assert admin.get("/users").status_code == 403

    store.set_role("ada", "admin")
    removed = admin.htmx("POST", "/users/ada/remove")
    assert removed.headers["HX-Redirect"] == "/login"
    assert [u.name for u in store.list_users()] == ["bob", "eddie", "vera"]
