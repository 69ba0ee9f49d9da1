"""Lookups in the web UI and the API: SalesExec's Lead Type UID offered as a menu read from the
vendor, free entry with one line saying why when it cannot be read."""

from __future__ import annotations

import datetime as dt
import re

import lxml.html
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.conftest import NOW, SALES_PASSWORD, SALES_USER, salesexec_app
from tests.web.conftest import api_client
from tests.web.test_wizard import LAST_WEEK, Panes

WRONG_PASSWORD = "wrong-pass-9931"


@pytest.fixture
def salesexec_url(vendors) -> str:
    _, simulator = salesexec_app()
    return vendors.add("salesexec.test", simulator)


def sales_account(store, url: str, password: str = SALES_PASSWORD, name: str = "sales"):
    return store.create_account(
        name, "salesexec", {"username": SALES_USER, "base_url": url}, {"password": password}
    )


@pytest.fixture
def sales(store, salesexec_url):
    return sales_account(store, salesexec_url)


def details_pane(editor, account: str) -> Panes:
    panes = Panes(editor)
    panes.press(connector="salesexec", account=account, report="all_leads")
    assert panes.step == "details", panes.page.text
    return panes


def menu(fragment: str) -> list[tuple[str, str]]:
    options = lxml.html.fragment_fromstring(fragment).findall(".//datalist/option")
    return [(option.get("value"), option.text) for option in options]


def test_the_lead_type_uid_control_loads_its_menu_for_the_chosen_account(editor, sales):
    page = details_pane(editor, "sales").page.text
    control = lxml.html.fromstring(page).get_element_by_id("param-lead_type_uid")
    assert control.get("list") == "lookup-lead_type_uid-choices"
    loader = lxml.html.fromstring(page).get_element_by_id("lookup-lead_type_uid")
    assert loader.get("hx-get") == "/wizard/lookup/lead_type_uid?account=sales"
    assert loader.get("hx-trigger") == "load"

    fragment = editor.htmx("GET", loader.get("hx-get"))
    assert fragment.status_code == 200
    choices = menu(fragment.text)
    assert choices
    assert all(value.isdigit() and label for value, label in choices)
    assert f"{len(choices)} Lead Type UID values read from account sales" in fragment.text


def test_the_api_lists_the_same_choices_as_the_menu(app, store, editor, sales):
    fragment = editor.htmx("GET", "/wizard/lookup/lead_type_uid?account=sales").text
    with api_client(app, store, "eddie") as client:
        report = client.get("/api/v1/connectors/salesexec/reports/all_leads").json()
        answer = client.get("/api/v1/accounts/sales/lookups/lead_type_uid")
    assert [(p["id"], p["lookup"]) for p in report["params"]] == [("lead_type_uid", True)]
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == len(body["data"])
    assert [(c["value"], c["label"]) for c in body["data"]] == menu(fragment)


def test_a_refused_login_leaves_free_entry_with_one_line(editor, store, salesexec_url):
    sales_account(store, salesexec_url, password=WRONG_PASSWORD)
    panes = details_pane(editor, "sales")
    fragment = editor.htmx("GET", "/wizard/lookup/lead_type_uid?account=sales")
    assert fragment.status_code == 200
    assert menu(fragment.text) == []
    line = lxml.html.fragment_fromstring(fragment.text).find(".//span[@class='help']")
    assert line.text_content().startswith("Type the Lead Type UID: its list could not be read (")
    assert "rejected the username or password for account sales" in line.text_content()
    assert WRONG_PASSWORD not in fragment.text
    # Free entry: any UID is taken, menu or not.
    panes.press(param_lead_type_uid="424242", **LAST_WEEK)
    assert panes.step == "scheduling", panes.page.text


def echoing_vendor() -> Starlette:
    """A vendor whose error quotes the request it refused, credentials included."""

    async def refuse(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"cannot serve {(await request.body()).decode()}", 400)

    return Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST"])])


def test_a_vendor_quoting_the_password_never_shows_it(editor, store, vendors, app):
    url = vendors.add("echo.test", echoing_vendor())
    sales_account(store, url, password=WRONG_PASSWORD, name="echo")
    fragment = editor.htmx("GET", "/wizard/lookup/lead_type_uid?account=echo")
    said = "its list could not be read (SalesExec: POST http://echo.test/token answered HTTP 400"
    assert said in fragment.text
    assert WRONG_PASSWORD not in fragment.text
    with api_client(app, store, "eddie") as client:
        answer = client.get("/api/v1/accounts/echo/lookups/lead_type_uid")
    assert answer.status_code == 502
    assert "answered HTTP 400" in answer.json()["detail"]
    assert WRONG_PASSWORD not in answer.text


def test_an_unreachable_vendor_leaves_free_entry_with_one_line(editor, store):
    sales_account(store, "http://nowhere.test", name="away")
    fragment = editor.htmx("GET", "/wizard/lookup/lead_type_uid?account=away").text
    assert menu(fragment) == []
    assert re.search(r"its list could not be read \(SalesExec: POST \S+ failed", fragment)


def test_the_api_needs_the_editor_role_and_a_parameter_with_a_lookup(
    app, store, viewer, sales, acme_account
):
    with api_client(app, store, "vera") as client:
        assert client.get("/api/v1/accounts/sales/lookups/lead_type_uid").status_code == 403
    assert viewer.htmx("GET", "/wizard/lookup/lead_type_uid?account=sales").status_code == 403
    with api_client(app, store, "eddie") as client:
        unknown = client.get("/api/v1/accounts/sales/lookups/nope")
        assert unknown.status_code == 404
        assert "parameters with a list: lead_type_uid" in unknown.json()["detail"]
        leadexec = client.get("/api/v1/accounts/acme/lookups/lid")
        assert leadexec.status_code == 404
        assert "LeadExec lists no values for parameter 'lid'" in leadexec.json()["detail"]
        assert client.get("/api/v1/accounts/ghost/lookups/lead_type_uid").status_code == 404


def test_leadexec_parameters_stay_plain_inputs(editor, acme_account):
    panes = Panes(editor)
    panes.press(account="acme")
    assert 'id="param-lid"' in panes.page.text
    assert "/wizard/lookup/" not in panes.page.text


class CountedVendor:
    """A simulator that counts the requests it answers."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope, receive, send) -> None:
        self.requests += scope["type"] == "http"
        await self.app(scope, receive, send)

    def asked(self, call):
        """What *call* returns, and how many requests the vendor answered meanwhile."""
        before = self.requests
        result = call()
        return result, self.requests - before


@pytest.fixture
def counted(vendors, store) -> CountedVendor:
    """SalesExec in-process, counting its requests, with account ``sales`` on it."""
    _, simulator = salesexec_app()
    vendor = CountedVendor(simulator)
    sales_account(store, vendors.add("salesexec.test", vendor))
    return vendor


WIZARD_LOOKUP = "/wizard/lookup/lead_type_uid?account=sales"
API_LOOKUP = "/api/v1/accounts/sales/lookups/lead_type_uid"


def test_a_menu_read_minutes_ago_is_served_without_asking_the_vendor(app, store, editor, counted):
    def wizard(url: str = WIZARD_LOOKUP):
        return counted.asked(lambda: editor.htmx("GET", url).text)

    first, asked = wizard()
    assert asked > 0
    assert menu(first)
    again, asked = wizard()
    assert (menu(again), asked) == (menu(first), 0)
    with api_client(app, store, "eddie") as client:
        answer, asked = counted.asked(lambda: client.get(API_LOOKUP).json())
    assert ([(c["value"], c["label"]) for c in answer["data"]], asked) == (menu(first), 0)
    assert answer["read_at"] == NOW.isoformat(timespec="seconds")

    # Read again (the menu's button, or ?refresh in the API) asks the vendor whatever is kept.
    button = lxml.html.fragment_fromstring(first).find(".//button[@data-testid]")
    assert button.text == "Read again"
    refreshed, asked = wizard(button.get("hx-get"))
    assert menu(refreshed) == menu(first)
    assert asked > 0
    with api_client(app, store, "eddie") as client:
        answer, asked = counted.asked(lambda: client.get(API_LOOKUP, params={"refresh": "true"}))
    assert answer.status_code == 200
    assert asked > 0

    # Five minutes later the vendor is asked again; a kept menu says when it was read.
    later = NOW + dt.timedelta(minutes=5)
    app.state.clock = lambda: later
    assert wizard()[1] > 0
    app.state.clock = lambda: later + dt.timedelta(minutes=1)
    kept, asked = wizard()
    assert asked == 0
    assert f"values read from account sales at {later:%Y-%m-%d %H:%M} UTC:" in kept


def test_rotating_the_secret_forgets_the_menu(editor, counted):
    assert menu(editor.htmx("GET", WIZARD_LOOKUP).text)
    rotated = editor.send_form("POST", "/accounts/sales/secret", {"password": WRONG_PASSWORD})
    assert rotated.status_code == 303, rotated.text
    refused, asked = counted.asked(lambda: editor.htmx("GET", WIZARD_LOOKUP).text)
    assert asked > 0
    assert menu(refused) == []
    assert "rejected the username or password for account sales" in refused

    # A refusal is not kept: the right password, rotated back, gets the menu at once.
    editor.send_form("POST", "/accounts/sales/secret", {"password": SALES_PASSWORD})
    assert menu(editor.htmx("GET", WIZARD_LOOKUP).text)


def test_an_account_edited_elsewhere_reads_its_menu_again(editor, store, counted):
    editor.htmx("GET", WIZARD_LOOKUP)
    store.update_account("sales", config={"username": SALES_USER})  # as `accounts edit` would
    assert counted.asked(lambda: editor.htmx("GET", WIZARD_LOOKUP))[1] > 0
