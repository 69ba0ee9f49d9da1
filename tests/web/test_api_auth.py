"""Who may call the REST API: tokens and sessions, roles on every operation, token management."""

from __future__ import annotations

import pytest

from leadferry.store import DatasetSpec
from leadferry.web import API_PREFIX
from tests.web.conftest import api_client

NAMES = {"{name}": "acme", "{connector}": "leadexec", "{report}": "leads", "{run_id}": "1"}


def operations(client, *, changes: bool) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the API's OpenAPI document that reads, or changes."""
    paths = client.get(f"{API_PREFIX}/openapi.json").json()["paths"]
    found = []
    for template, methods in paths.items():
        path = template
        if template.startswith(f"{API_PREFIX}/datasets/"):
            path = path.replace("{name}", "leads")
        for placeholder, value in NAMES.items():
            path = path.replace(placeholder, value)
        found += [(m.upper(), path) for m in methods if (m != "get") == changes]
    return sorted(found)


@pytest.fixture
def dataset(store, acme_account):
    return store.create_dataset(
        DatasetSpec(name="leads", account="acme", report="leads", params={"lid": 271})
    )


def test_every_operation_needs_credentials(app, store, anonymous, dataset):
    with api_client(app, store, "vera") as reader:
        calls = operations(reader, changes=False) + operations(reader, changes=True)
    assert len(calls) > 15
    for method, path in calls:
        answer = anonymous.request(method, path, json={})
        assert answer.status_code == 401, (method, path)
        assert answer.json() == {"detail": "log in, or send Authorization: Bearer <API token>"}


def test_a_viewer_reads_everything_and_changes_nothing(app, store, dataset):
    with api_client(app, store, "vera") as viewer:
        for method, path in operations(viewer, changes=False):
            answer = viewer.request(method, path)
            # Users are the admin's; a lookup calls the vendor with the account's credentials,
            # for an editor building a dataset.
            if path == f"{API_PREFIX}/users" or "/lookups/" in path:
                assert answer.status_code == 403, path
            else:
                # Nothing has run yet: no run 1, no warehouse to preview.
                assert answer.status_code in (200, 404), (path, answer.text)
        assert viewer.get(f"{API_PREFIX}/datasets/leads").status_code == 200
        changes = [
            (method, path)
            for method, path in operations(viewer, changes=True)
            if not path.startswith(f"{API_PREFIX}/tokens")  # a viewer's own tokens
        ]
        assert ("POST", f"{API_PREFIX}/datasets/leads/runs") in changes
        for method, path in changes:
            answer = viewer.request(method, path, json={})
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["detail"] == "vera is a viewer: this needs the editor role"
    assert store.get_account("acme").name == "acme"
    assert store.list_runs("leads") == []


def test_an_editor_changes_accounts_and_datasets_but_not_users(app, store, acme_account):
    with api_client(app, store, "eddie") as editor:
        created = editor.post(
            f"{API_PREFIX}/datasets",
            json={"name": "leads", "account": "acme", "report": "leads", "params": {"lid": 1}},
        )
        assert created.status_code == 201
        assert editor.delete(f"{API_PREFIX}/datasets/leads").status_code == 204
        assert editor.get(f"{API_PREFIX}/users").status_code == 403


def test_an_admin_lists_the_users(app, store):
    with api_client(app, store, "ada") as admin:
        users = admin.get(f"{API_PREFIX}/users").json()
    assert {(u["name"], u["role"]) for u in users["data"]} == {
        ("ada", "admin"),
        ("eddie", "editor"),
        ("vera", "viewer"),
    }


def test_a_revoked_or_malformed_token_is_refused(app, store):
    record, plain = store.create_token("eddie", "ci")
    headers = {"Authorization": f"Bearer {plain}"}
    with api_client(app, store, "eddie") as client:
        assert client.get(f"{API_PREFIX}/users/me", headers=headers).json()["name"] == "eddie"
        store.revoke_token(record.id)
        assert client.get(f"{API_PREFIX}/datasets", headers=headers).status_code == 401
        for bad in ("Bearer lf_nope", "Bearer ", "Basic ZWRkaWU6eA==", "lf_" + plain):
            answer = client.get(f"{API_PREFIX}/datasets", headers={"Authorization": bad})
            assert answer.status_code == 401, bad


def test_tokens_are_shown_once_listed_without_their_secret_and_revoked(app, store):
    with api_client(app, store, "vera") as viewer:
        created = viewer.post(f"{API_PREFIX}/tokens", json={"name": "laptop"})
        assert created.status_code == 201
        token = created.json()["token"]
        assert token.startswith("lf_")
        listed = viewer.get(f"{API_PREFIX}/tokens").json()
        assert [t["name"] for t in listed["data"]] == ["tests", "laptop"]
        assert token not in viewer.get(f"{API_PREFIX}/tokens").text
        new = {"Authorization": f"Bearer {token}"}
        assert viewer.get(f"{API_PREFIX}/users/me", headers=new).json()["role"] == "viewer"
        token_id = created.json()["id"]
        assert viewer.delete(f"{API_PREFIX}/tokens/{token_id}").status_code == 204
        assert viewer.get(f"{API_PREFIX}/users/me", headers=new).status_code == 401
        assert viewer.delete(f"{API_PREFIX}/tokens/{token_id}").status_code == 404


def test_a_user_cannot_see_or_revoke_anothers_tokens(app, store):
    others, _plain = store.create_token("ada", "admin-ci")
    with api_client(app, store, "eddie") as editor:
        names = [t["name"] for t in editor.get(f"{API_PREFIX}/tokens").json()["data"]]
        assert names == ["tests"]
        answer = editor.delete(f"{API_PREFIX}/tokens/{others.id}")
        assert answer.status_code == 404
    assert [t.name for t in store.list_tokens("ada")] == ["admin-ci"]


def test_a_logged_in_page_session_uses_the_api_with_its_csrf_token(editor, acme_account):
    assert editor.get(f"{API_PREFIX}/accounts").json()["count"] == 1
    body = {"name": "leads", "account": "acme", "report": "leads", "params": {"lid": 271}}
    refused = editor.post(f"{API_PREFIX}/datasets", json=body)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    sent = editor.post(f"{API_PREFIX}/datasets", json=body, headers={"X-CSRF-Token": editor.csrf})
    assert sent.status_code == 201
