"""The Accounts pages: list, add, test, edit, rotate, rename, remove; secrets never shown."""

from __future__ import annotations

import html
import re

import lxml.html
import pytest

from leadferry.dates import DateSelection
from leadferry.errors import AuthError
from leadferry.run import run_dataset
from leadferry.service.datasets import create_dataset
from leadferry.store import DatasetSpec
from tests.conftest import API_KEY, NOW

WRONG_KEY = "le-0000-0000-wrong-key-7Q2Z"


def error_next_to(page: str, field_id: str) -> str:
    """The error message in the label of the input *field_id*, linked to it for screen readers."""
    label = re.search(
        rf'<label>((?!</label>).)*id="{re.escape(field_id)}"((?!</label>).)*</label>', page, re.S
    )
    assert label, f"no input {field_id} in its label"
    assert f'aria-describedby="{field_id}-error"' in label.group(0)
    error = re.search(
        rf'<span class="field-error" id="{re.escape(field_id)}-error">(.*?)</span>',
        label.group(0),
        re.S,
    )
    assert error, f"no error next to {field_id}"
    return html.unescape(error.group(1))


def add_dataset(store, name="acme_leads", account="acme"):
    spec = DatasetSpec(
        name=name,
        account=account,
        report="leads",
        params={"lid": 271},
        date_selection=DateSelection(days_back=3),
    )
    return create_dataset(store, spec, NOW)


def account_row(page: str, name: str) -> str:
    row = re.search(rf'<tr id="account-{re.escape(name)}".*?</tr>', page, re.S)
    assert row, f"no row for account {name}"
    return row.group(0)


def test_the_list_shows_connector_settings_masked_secret_and_datasets(
    editor, store, acme_account, leadexec_url
):
    add_dataset(store)
    page = editor.get("/accounts")
    assert page.status_code == 200
    row = account_row(page.text, "acme")
    assert "LeadExec" in row
    assert f"{leadexec_url}/" in row
    assert "America/Los_Angeles" in row  # the connector's default zone, marked as such
    assert "(default)" in row
    assert "••••-key" in row
    assert re.search(r'data-testid="dataset-count">1<', row)
    assert API_KEY not in page.text


def test_testing_the_connection_says_the_vendor_accepted_the_credentials(editor, acme_account):
    answer = editor.htmx("POST", "/accounts/acme/test")
    assert answer.status_code == 200
    assert "ok: LeadExec accepted the credentials" in answer.text
    assert 'class="test-result ok"' in answer.text


def test_a_wrong_key_is_refused_with_the_vendors_message_and_never_shown(
    editor, store, acme_account
):
    rotated = editor.send_form("POST", "/accounts/acme/secret", {"api_key": WRONG_KEY})
    assert rotated.status_code == 303

    answer = editor.htmx("POST", "/accounts/acme/test")
    assert answer.status_code == 502
    assert "LeadExec rejected the API key for account acme" in answer.text
    assert 'class="test-result error"' in answer.text
    # Without JavaScript, the same answer comes on the account's page.
    page = editor.send_form("POST", "/accounts/acme/test")
    assert "LeadExec rejected the API key for account acme" in page.text
    for body in (answer.text, page.text, editor.get("/accounts").text):
        assert WRONG_KEY not in body
        assert API_KEY not in body
    assert "••••7Q2Z" in page.text


def last_tested_cell(page: str, name: str = "acme") -> str:
    found = re.search(rf'<div id="tested-{name}".*?</div>\s*</td>', page, re.S) or re.search(
        rf'<div id="tested-{name}".*?</div>', page, re.S
    )
    assert found, f"no Last tested cell for {name}"
    return " ".join(lxml.html.fromstring(found.group(0)).text_content().split())


def test_the_accounts_page_shows_when_each_account_was_last_tested_and_how(
    editor, store, acme_account
):
    assert last_tested_cell(editor.get("/accounts").text) == "never"
    answer = editor.htmx("POST", "/accounts/acme/test")
    # The row's cell follows the test at once, out of band.
    assert re.search(r'<div id="tested-acme"[^>]*hx-swap-oob="true"', answer.text)
    [summary] = store.list_accounts()
    assert (summary.test_ok, summary.test_message) == (True, "LeadExec accepted the credentials")
    assert summary.tested_at is not None
    assert last_tested_cell(editor.get("/accounts").text).startswith("ok ")
    editor.send_form("POST", "/accounts/acme/secret", {"api_key": WRONG_KEY})
    editor.htmx("POST", "/accounts/acme/test")
    cell = last_tested_cell(editor.get("/accounts").text)
    assert cell.startswith("failed ")
    assert cell.endswith("LeadExec rejected the API key for account acme")
    assert "LeadExec rejected the API key" in last_tested_cell(editor.get("/accounts/acme").text)
    assert WRONG_KEY not in str(store.list_accounts())


def test_adding_an_account_saves_it_and_goes_to_its_page(editor, store, leadexec_url):
    answer = editor.send_form(
        "POST",
        "/accounts",
        {
            "name": "acme-east",
            "connector": "leadexec",
            "api_key": f"  {API_KEY} ",
            "base_url": f"{leadexec_url}/",
            "timezone": "America/New_York",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/accounts/acme-east?done=added"
    account = store.get_account("acme-east")
    assert account.credentials() == {
        "api_key": API_KEY,
        "base_url": f"{leadexec_url}/",
        "timezone": "America/New_York",
    }
    page = editor.get(answer.headers["location"])
    assert "Account added" in page.text
    # The connection was tested before saving, and the account remembers it.
    assert last_tested_cell(page.text, "acme-east").startswith("ok ")
    assert "ok: LeadExec" in editor.htmx("POST", "/accounts/acme-east/test").text


def test_an_account_the_vendor_refuses_is_saved_only_when_told_to(editor, store, leadexec_url):
    fields = {
        "name": "acme-east",
        "connector": "leadexec",
        "api_key": WRONG_KEY,
        "base_url": f"{leadexec_url}/",
    }
    answer = editor.send_form("POST", "/accounts", fields)
    assert answer.status_code == 422
    assert store.list_accounts() == []
    refusal = lxml.html.fromstring(answer.text).get_element_by_id("test-error").text_content()
    assert "Test connection failed: LeadExec rejected the API key" in refusal
    assert 'id="save-anyway"' in answer.text
    assert WRONG_KEY not in answer.text
    saved = editor.send_form("POST", "/accounts", fields | {"save_anyway": "on"})
    assert saved.status_code == 303
    [account] = store.list_accounts()
    assert (account.name, account.test_ok) == ("acme-east", False)
    assert "LeadExec rejected the API key" in account.test_message
    page = editor.get("/accounts").text
    assert last_tested_cell(page, "acme-east").startswith("failed ")
    assert WRONG_KEY not in page


def test_a_missing_required_field_is_shown_next_to_it(editor, store):
    answer = editor.send_form(
        "POST", "/accounts", {"name": "calls", "connector": "avidtrak", "timezone": "Mars/Olympus"}
    )
    assert answer.status_code == 422
    assert error_next_to(answer.text, "pin_code") == "AvidTrak accounts need the Pin Code."
    assert error_next_to(answer.text, "base_url") == "AvidTrak accounts need the Base URL."
    assert "unknown time zone 'Mars/Olympus'" in error_next_to(answer.text, "timezone")
    assert 'id="add-account" open' in answer.text  # the form stays open, with what was typed
    assert 'value="calls"' in answer.text
    assert store.list_accounts() == []


def test_a_taken_or_invalid_name_is_shown_next_to_the_name(editor, store, acme_account):
    fields = {"connector": "leadexec", "api_key": API_KEY}
    taken = editor.send_form("POST", "/accounts", {"name": "acme", **fields})
    assert taken.status_code == 422
    assert error_next_to(taken.text, "name") == "an account named 'acme' already exists"
    invalid = editor.send_form("POST", "/accounts", {"name": "no spaces", **fields})
    assert "invalid account name 'no spaces'" in error_next_to(invalid.text, "name")
    for body in (taken.text, invalid.text):  # the typed key is not sent back
        assert API_KEY not in body
    assert [a.name for a in store.list_accounts()] == ["acme"]


def test_choosing_a_connector_brings_its_fields(editor):
    answer = editor.htmx("GET", "/accounts/new/fields?connector=salesexec")
    assert answer.status_code == 200
    assert 'name="username"' in answer.text
    assert re.search(r'name="password" id="password"\s+type="password"', answer.text)
    assert 'name="api_key"' not in answer.text
    assert editor.htmx("GET", "/accounts/new/fields?connector=nope").status_code == 404


def test_rotating_the_secret_keeps_datasets_working(
    editor, store, settings, acme_account, vendor_client
):
    add_dataset(store)
    editor.send_form("POST", "/accounts/acme/secret", {"api_key": WRONG_KEY})
    with pytest.raises(AuthError):
        run_dataset(store, settings, "acme_leads", clock=lambda: NOW, client=vendor_client)

    answer = editor.send_form("POST", "/accounts/acme/secret", {"api_key": API_KEY})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/accounts/acme?done=secret"
    run = run_dataset(store, settings, "acme_leads", clock=lambda: NOW, client=vendor_client)
    assert run.status == "success"
    assert run.total_rows > 0
    assert store.get_dataset("acme_leads").account == "acme"


def test_rotating_asks_for_the_secret_and_the_address_only(
    editor, store, acme_account, leadexec_url
):
    page = editor.get("/accounts/acme").text
    rotate = re.search(r'id="secret-form".*?</form>', page, re.S).group(0)
    assert re.findall(r'<input name="(\w+)"', rotate) == ["api_key", "base_url"]
    assert 'type="password"' in rotate
    empty = editor.send_form("POST", "/accounts/acme/secret", {"api_key": "  "})
    assert empty.status_code == 422
    assert error_next_to(empty.text, "api_key") == "LeadExec accounts need the API Key."
    assert store.get_account("acme").credentials()["api_key"] == API_KEY


def test_editing_settings_changes_the_non_secret_fields(editor, store, acme_account, leadexec_url):
    answer = editor.send_form(
        "POST", "/accounts/acme/settings", {"base_url": f"{leadexec_url}/", "timezone": "UTC"}
    )
    assert answer.status_code == 303
    assert "Settings saved." in editor.get(answer.headers["location"]).text
    assert store.get_account("acme").credentials() == {
        "api_key": API_KEY,
        "base_url": f"{leadexec_url}/",
        "timezone": "UTC",
    }

    wrong = editor.send_form("POST", "/accounts/acme/settings", {"timezone": "Nowhere/Town"})
    assert wrong.status_code == 422
    assert "unknown time zone 'Nowhere/Town'" in error_next_to(wrong.text, "timezone")
    assert 'value="Nowhere/Town"' in wrong.text
    assert store.get_account("acme").config["timezone"] == "UTC"


def test_renaming_an_account_takes_its_datasets_along(editor, store, acme_account):
    add_dataset(store)
    answer = editor.send_form("POST", "/accounts/acme/rename", {"new_name": "acme.west"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/accounts/acme.west?done=renamed"
    assert store.get_dataset("acme_leads").account == "acme.west"
    assert "acme_leads" in editor.get(answer.headers["location"]).text

    invalid = editor.send_form("POST", "/accounts/acme.west/rename", {"new_name": "-x"})
    assert invalid.status_code == 422
    assert "invalid account name '-x'" in error_next_to(invalid.text, "new_name")


def test_an_account_in_use_cannot_be_removed(editor, store, acme_account):
    add_dataset(store)
    row = account_row(editor.get("/accounts").text, "acme")
    assert re.search(
        r'<button type="submit" class="danger" disabled data-testid="remove-account"', row
    )
    assert "Used by 1 dataset" in row

    refused = editor.htmx("POST", "/accounts/acme/remove")
    assert refused.status_code == 409
    assert refused.headers["HX-Retarget"] == "#flash"
    assert "account 'acme' is used by 1 dataset (acme_leads)" in html.unescape(refused.text)
    page = editor.send_form("POST", "/accounts/acme/remove")
    assert page.status_code == 409
    assert "is used by 1 dataset" in page.text
    assert [a.name for a in store.list_accounts()] == ["acme"]


def test_an_unused_account_is_removed(editor, store, acme_account):
    row = account_row(editor.get("/accounts").text, "acme")
    assert re.search(r'<button type="submit" class="danger" data-testid="remove-account"', row)
    answer = editor.htmx("POST", "/accounts/acme/remove")
    assert answer.status_code == 200
    assert answer.text == ""  # swapped in place of the row
    assert store.list_accounts() == []
    assert editor.get("/accounts/acme").status_code == 404


def test_viewers_see_the_accounts_but_no_actions(viewer, store, acme_account):
    add_dataset(store)
    listing = viewer.get("/accounts")
    assert listing.status_code == 200
    assert "acme" in account_row(listing.text, "acme")
    page = viewer.get("/accounts/acme")
    assert page.status_code == 200
    assert "acme_leads" in page.text
    for body in (listing.text, page.text):
        assert "Test connection" not in body
        assert 'action="/accounts' not in body
        assert "••••-key" in body


CHANGES = [
    ("GET", "/accounts/new/fields?connector=leadexec", None),
    ("POST", "/accounts", {"name": "x", "connector": "leadexec", "api_key": WRONG_KEY}),
    ("POST", "/accounts/acme/test", {}),
    ("POST", "/accounts/acme/settings", {"timezone": "UTC"}),
    ("POST", "/accounts/acme/secret", {"api_key": WRONG_KEY}),
    ("POST", "/accounts/acme/rename", {"new_name": "mine"}),
    ("POST", "/accounts/acme/remove", {}),
]
"""Every route that changes (or uses the secret of) an account."""


def test_viewers_are_refused_every_change(viewer, store, acme_account):
    for method, url, data in CHANGES:
        answer = viewer.send_form(method, url, data) if data is not None else viewer.get(url)
        assert answer.status_code == 403, url
        assert "vera is a viewer: this needs the editor role" in answer.text
    assert [(a.name, a.config) for a in store.list_accounts()] == [("acme", acme_account.config)]
    assert store.get_account("acme").credentials()["api_key"] == API_KEY


def test_the_secret_never_appears_in_any_answer(editor, admin, store, acme_account):
    add_dataset(store)
    bodies = [
        editor.get("/accounts").text,
        editor.get("/accounts/acme").text,
        editor.get("/accounts/acme?done=secret").text,
        editor.htmx("POST", "/accounts/acme/test").text,
        editor.send_form("POST", "/accounts/acme/test").text,
        editor.send_form("POST", "/accounts/acme/settings", {"timezone": "Bad/Zone"}).text,
        editor.send_form("POST", "/accounts/acme/rename", {"new_name": "bad name"}).text,
        editor.send_form("POST", "/accounts/acme/remove").text,
        admin.get("/accounts").text,
    ]
    assert all(bodies)
    for body in bodies:
        assert API_KEY not in body
        assert API_KEY[:-4] not in body  # not even the part the mask hides


def test_the_address_never_changes_without_the_secret(editor, store, acme_account, leadexec_url):
    # Otherwise an editor could send the stored key to a server of their own.
    elsewhere = "http://127.0.0.1:9/"
    editor.send_form("POST", "/accounts/acme/settings", {"base_url": elsewhere})
    assert store.get_account("acme").config["base_url"] == f"{leadexec_url}/"
    refused = editor.send_form("POST", "/accounts/acme/secret", {"base_url": elsewhere})
    assert refused.status_code == 422
    assert store.get_account("acme").config["base_url"] == f"{leadexec_url}/"
    moved = editor.send_form(
        "POST", "/accounts/acme/secret", {"base_url": elsewhere, "api_key": "new-key-7788"}
    )
    assert moved.status_code == 303
    assert store.get_account("acme").credentials()["api_key"] == "new-key-7788"
