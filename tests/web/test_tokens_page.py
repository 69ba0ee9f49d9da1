"""The API tokens page: create (shown once), list, revoke; each user their own, admins all."""

from __future__ import annotations

import re

from tests.web.test_accounts_page import error_next_to


def create(browser, name: str = "ci-export"):
    answer = browser.htmx("POST", "/tokens", data={"token_name": name})
    assert answer.status_code == 200
    plaintext = re.search(r'data-testid="new-token-value">(lf_[^<]+)</code>', answer.text).group(1)
    return answer, plaintext


def test_a_new_token_is_shown_once_then_only_its_prefix(viewer, store):
    answer, plaintext = create(viewer)
    assert "Copy it now, it will not be shown again." in answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    (token,) = store.list_tokens("vera")
    assert plaintext.startswith(f"lf_{token.prefix}")

    page = viewer.get("/tokens")
    assert page.status_code == 200
    assert plaintext not in page.text
    assert "will not be shown again" not in page.text
    row = re.search(rf'<tr id="token-{token.id}".*?</tr>', page.text, re.S).group(0)
    assert f"<code>lf_{token.prefix}…</code>" in row
    assert "ci-export" in row
    assert "never" in row  # not used yet


def test_a_created_token_authenticates_its_user(viewer, store):
    _answer, plaintext = create(viewer)
    user = store.user_for_token(plaintext)
    assert (user.name, user.role) == ("vera", "viewer")
    # The page says when it was last used (the store's clock is real; the page shows it).
    (token,) = store.list_tokens("vera")
    row = re.search(rf'<tr id="token-{token.id}".*?</tr>', viewer.get("/tokens").text, re.S)
    assert token.last_used_at is not None
    assert "never" not in row.group(0)


def test_users_see_their_own_tokens_and_admins_everyones(admin, editor, viewer, store):
    store.create_token("eddie", "eddie-cron")
    store.create_token("vera", "vera-sheet")
    store.create_token("ada", "ada-admin")
    assert "vera-sheet" in viewer.get("/tokens").text
    assert "eddie-cron" not in viewer.get("/tokens").text
    assert "ada-admin" not in editor.get("/tokens").text
    everyone = admin.get("/tokens").text
    assert "<th>User</th>" in everyone
    for name in ("eddie-cron", "vera-sheet", "ada-admin"):
        assert name in everyone


def test_revoking_a_token_stops_it_working(viewer, store):
    _answer, plaintext = create(viewer)
    (token,) = store.list_tokens("vera")
    answer = viewer.htmx("POST", f"/tokens/{token.id}/revoke")
    assert answer.status_code == 200
    assert "Revoked token ci-export (vera)." in answer.text
    assert "No API tokens yet." in answer.text
    assert store.user_for_token(plaintext) is None


def test_only_an_admin_revokes_someone_elses_token(admin, viewer, store):
    token, plaintext = store.create_token("eddie", "eddie-cron")
    refused = viewer.htmx("POST", f"/tokens/{token.id}/revoke")
    assert refused.status_code == 404
    assert f"no API token with id {token.id} of user" in refused.text
    assert store.user_for_token(plaintext).name == "eddie"

    answer = admin.htmx("POST", f"/tokens/{token.id}/revoke")
    assert answer.status_code == 200
    assert "Revoked token eddie-cron (eddie)." in answer.text
    assert store.user_for_token(plaintext) is None


def test_a_token_needs_a_name(viewer, store):
    answer = viewer.send_form("POST", "/tokens", {"token_name": "   "})
    assert answer.status_code == 422
    assert "a token name needs 1 to 64 characters" in error_next_to(answer.text, "token-name")
    assert "lf_" not in re.search(r"<tbody>.*?</tbody>", answer.text, re.S).group(0)
    assert store.list_tokens() == []


def test_tokens_need_a_login_and_the_forms_token(anonymous, viewer, store):
    assert anonymous.get("/tokens").headers["location"] == "/login?next=/tokens"
    refused = viewer.post("/tokens", data={"token_name": "sneaky"})
    assert refused.status_code == 403
    assert store.list_tokens() == []


def test_revoking_an_impossible_token_id_is_a_422_not_a_crash(viewer):
    answer = viewer.send_form("POST", "/tokens/99999999999999999999/revoke")
    assert answer.status_code == 422
