"""Pages and API answers in-process, against a vendor that quotes the request (and its key)
back in every spelling: Test connection, Load Preview, Run Now and the dataset's history."""

from __future__ import annotations

import pytest

from tests.fake_vendors import CANARY, echo_app, spellings
from tests.web.test_wizard import to_details


@pytest.fixture
def echo_account(store, vendors) -> str:
    vendor = vendors.add("echo.test", echo_app())
    store.create_account("echo", "leadexec", {"base_url": vendor}, {"api_key": CANARY})
    return "echo"


def shown(*bodies: str) -> list[str]:
    return [spelled for spelled in spellings(CANARY) for body in bodies if spelled in body]


def test_test_connection_page_and_answer_mask_the_quoted_key(editor, echo_account):
    fragment = editor.htmx("POST", "/accounts/echo/test")
    page = editor.send_form("POST", "/accounts/echo/test")
    answer = editor.post("/api/v1/accounts/echo/test", headers={"X-CSRF-Token": editor.csrf})
    assert fragment.status_code == 502
    assert "answered HTTP 400: Bad request GET" in fragment.text
    assert "key=****" in page.text
    assert answer.json()["ok"] is False
    assert "key=****" in answer.json()["error"]
    assert not shown(fragment.text, page.text, answer.text)


def test_load_preview_masks_the_quoted_key(editor, echo_account):
    panes = to_details(editor, "echo")
    answer = panes.live("/wizard/preview", param_lid="271")
    assert answer.status_code == 502
    assert "key=****" in answer.text
    api = editor.post(
        "/api/v1/preview",
        json={"account": "echo", "report": "leads", "params": {"lid": 271}},
        headers={"X-CSRF-Token": editor.csrf},
    )
    assert api.status_code == 502
    assert "key=****" in api.json()["detail"]
    assert not shown(answer.text, api.text)
