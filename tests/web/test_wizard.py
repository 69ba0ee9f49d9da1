"""Add DataSet and Edit: the four panes, driven as a browser drives them."""

from __future__ import annotations

import html
import re
from typing import Any

import lxml.html
import pytest

from leadferry.dates import DateSelection
from leadferry.schedule import Schedule, local, next_runs
from leadferry.service.datasets import dataset_zone
from leadferry.store import DatasetSpec
from leadferry.web.wizard.draft import NEW_ACCOUNT, Draft
from tests.conftest import API_KEY, NOW


class Panes:
    """Walks the wizard like a browser: reads the form's fields, changes some, presses a button."""

    def __init__(self, browser, url: str = "/datasets/new") -> None:
        self.browser = browser
        self.url = url
        self.page = browser.get(url)
        assert self.page.status_code == 200, self.page.text
        self.responses = [self.page]

    @property
    def step(self) -> str:
        return lxml.html.fromstring(self.page.text).get_element_by_id("wizard").get("data-step")

    def fields(self) -> dict[str, list[str]]:
        form = lxml.html.fromstring(self.page.text).get_element_by_id("wizard")
        values: dict[str, list[str]] = {}
        for name, value in form.form_values():
            values.setdefault(name, []).append(value)
        return values

    def press(self, button: str = "next", **changes: Any):
        values = self.fields() | {
            name: value if isinstance(value, list) else [value] for name, value in changes.items()
        }
        self.page = self.browser.post(self.url, data=values | {"action": [button]})
        self.responses.append(self.page)
        return self.page

    def live(self, path: str, **changes: Any):
        """An HTMX request of the current pane (a part, the window, the next runs...)."""
        values = self.fields() | {
            name: value if isinstance(value, list) else [value] for name, value in changes.items()
        }
        answer = self.browser.htmx("POST", path, data=values)
        self.responses.append(answer)
        return answer


def error_next_to(page: str, name: str, *, linked: bool = True) -> str:
    """The error shown in the label of control *name* (or in the fieldset of a group of
    checkboxes); fails when there is none.

    *linked*: the label's control (or the fieldset) points at it for screen readers.
    """
    for tag in ("label", "fieldset"):  # the innermost first: a fieldset may hold labels
        box = re.search(
            rf'<{tag}\b[^>]*>(?:(?!</{tag}>).)*name="{re.escape(name)}"(?:(?!</{tag}>).)*</{tag}>',
            page,
            re.S,
        )
        error = box and re.search(
            r'class="field-error" id="[^"]+-error">(.*?)</span>', box.group(0), re.S
        )
        if error:
            if linked:
                assert f'aria-describedby="{name}-error"' in box.group(0)
            return html.unescape(error.group(1))
    raise AssertionError(f"no error next to {name}")


def has_control(page: str, control_id: str) -> bool:
    return f'id="{control_id}"' in page


@pytest.fixture
def sales_account(store):
    return store.create_account(
        "sales", "salesexec", {"username": "ana.ops"}, {"password": "s3cret-pass-77"}
    )


@pytest.fixture
def calls_account(store):
    return store.create_account(
        "calls",
        "avidtrak",
        {"base_url": "http://avidtrak.test", "timezone": "America/New_York"},
        {"pin_code": "pin-4417-secret"},
    )


def to_details(browser, account: str) -> Panes:
    panes = Panes(browser)
    panes.press(account=account)
    assert panes.step == "details", panes.page.text
    return panes


LAST_WEEK = {"duration": "date", "report_date": "relative", "days_back": "7"}
RANGE = {
    "duration": "range",
    "start_date_type": "specific",
    "from_date": "2026-11-02",
    "end_date_type": "specific",
    "to_date": "2026-11-08",
}


# -- access -----------------------------------------------------------------------------------


def test_a_viewer_cannot_open_or_post_the_panes(viewer, store, acme_account):
    assert viewer.get("/datasets/new").status_code == 403
    assert viewer.send_form("POST", "/datasets/new", {"step": "credentials"}).status_code == 403
    assert viewer.htmx("POST", "/wizard/part/report", data={"account": "acme"}).status_code == 403
    assert viewer.htmx("POST", "/wizard/preview", data={"account": "acme"}).status_code == 403
    assert store.list_datasets() == []


def test_editing_needs_the_editor_role_and_an_existing_dataset(viewer, editor, store, acme_account):
    create_leads(store)
    assert viewer.get("/datasets/acme_leads/edit").status_code == 403
    assert editor.get("/datasets/nothing_here/edit").status_code == 404


# -- Credentials ------------------------------------------------------------------------------


def test_the_pane_starts_from_the_connector_and_offers_its_accounts(
    editor, acme_account, sales_account
):
    panes = Panes(editor)
    page = panes.page.text
    # The connector comes first; its accounts only are offered, with adding one of its own.
    assert page.index('id="connector"') < page.index('id="account"')
    assert re.search(r'<option value="leadexec" selected>LeadExec</option>', page)
    assert re.findall(r'<option value="(\w+)"[^>]*>\w+ \(', page) == ["acme"]
    assert "Add a new LeadExec account" in page
    assert "s3cret-pass-77" not in page
    assert API_KEY not in page
    sales = panes.live("/wizard/part/account", connector="salesexec").text
    assert sales.lstrip().startswith('<div id="account-controls"')
    assert re.search(r'<option value="sales" selected>sales \(', sales)
    assert "acme" not in sales
    assert "Add a new SalesExec account" in sales
    panes.press(connector="salesexec", account="sales")
    assert panes.step == "details"
    assert "SalesExec account" in panes.page.text


def test_a_connector_without_accounts_offers_to_add_one(editor, acme_account):
    fields = Panes(editor).live("/wizard/part/account", connector="avidtrak").text
    assert re.search(rf'<option value="{NEW_ACCOUNT}" selected>Add a new AvidTrak account', fields)
    assert has_control(fields, "account-name")
    assert has_control(fields, "acct_pin_code")


def test_without_accounts_the_pane_offers_to_add_one(editor):
    page = Panes(editor).page.text
    assert has_control(page, "account-name")
    # The first connector by name (AvidTrak) until another is chosen.
    assert has_control(page, "acct_pin_code")


def test_choosing_the_connector_swaps_in_its_credential_fields(editor):
    panes = Panes(editor)
    sales = panes.live("/wizard/part/account", connector="salesexec").text
    assert sales.lstrip().startswith('<div id="account-controls"')
    assert has_control(sales, "acct_username")
    assert has_control(sales, "acct_password")
    assert not has_control(sales, "acct_api_key")
    calls = panes.live("/wizard/part/account", connector="avidtrak").text
    assert "Pin Code" in calls
    assert has_control(calls, "acct_base_url")
    picked = panes.live("/wizard/part/new_account", account="__new__", connector="leadexec").text
    assert "API Key" in picked


def test_the_inline_account_errors_are_next_to_their_fields(editor, store):
    panes = Panes(editor)
    fields = panes.live("/wizard/part/new_account", connector="avidtrak").text
    assert re.search(r'id="acct_base_url"\s+value=""', fields)  # not LeadExec's default
    assert re.search(r'id="acct_timezone"\s+value="UTC"', fields)
    page = panes.press(
        account="__new__",
        account_name="no spaces",
        connector="avidtrak",
        acct_base_url="",
        acct_timezone="UTC",
    )
    assert page.status_code == 422
    assert panes.step == "credentials"
    assert "invalid account name" in error_next_to(page.text, "account_name")
    assert error_next_to(page.text, "acct_pin_code", linked=False) == "Enter the Pin Code."
    assert error_next_to(page.text, "acct_base_url", linked=False) == "Enter the Base URL."
    assert store.list_accounts() == []


def test_an_inline_account_is_saved_on_next_and_its_secret_never_comes_back(
    editor, store, leadexec_url
):
    panes = Panes(editor)
    page = panes.press(
        account="__new__",
        account_name="acme",
        connector="leadexec",
        acct_api_key=API_KEY,
        acct_base_url=f"{leadexec_url}/",
        acct_timezone="Mars/Base",
    )
    assert page.status_code == 422
    assert "unknown time zone" in error_next_to(page.text, "acct_timezone", linked=False)
    assert store.list_accounts() == []
    assert 'value="Mars/Base"' in page.text  # what was typed comes back, but never the key
    panes.live("/wizard/part/new_account", connector="leadexec", acct_api_key=API_KEY)
    page = panes.press(acct_api_key=API_KEY, acct_timezone="America/Denver")
    assert panes.step == "details"
    assert re.search(r'id="timezone"[^>]*value="America/Denver"', page.text)
    assert [a.name for a in store.list_accounts()] == ["acme"]
    assert store.get_account("acme").credentials()["api_key"] == API_KEY
    assert store.list_accounts()[0].test_ok is True  # tested before it was saved
    panes.live("/wizard/preview", param_lid="271")
    panes.press(param_lid="271", **LAST_WEEK)
    panes.press("back")
    panes.press("back")
    assert panes.step == "credentials"
    assert 'value="acme" selected' in panes.page.text
    for answer in panes.responses:
        assert API_KEY not in answer.text
        assert API_KEY.split("-")[-2] not in answer.text


def test_an_inline_account_is_tested_before_it_is_saved(editor, store, leadexec_url):
    panes = Panes(editor)
    inline = {
        "connector": "leadexec",
        "account": NEW_ACCOUNT,
        "account_name": "acme",
        "acct_api_key": "wrong-key-0000",
        "acct_base_url": f"{leadexec_url}/",
    }
    page = panes.press(**inline)
    assert page.status_code == 422
    assert panes.step == "credentials"
    refusal = lxml.html.fromstring(page.text).get_element_by_id("account-test-error")
    assert "Test connection failed: LeadExec rejected the API key" in refusal.text_content()
    assert has_control(page.text, "save-anyway")
    assert store.list_accounts() == []
    panes.press(**inline | {"save_anyway": "on"})
    assert panes.step == "details"
    [account] = store.list_accounts()
    assert (account.name, account.test_ok) == ("acme", False)
    for answer in panes.responses:
        assert "wrong-key-0000" not in answer.text


def test_an_account_must_be_chosen(editor, acme_account):
    panes = Panes(editor)
    page = panes.press(account="gone")
    assert page.status_code == 422
    assert "no account named 'gone'" in error_next_to(page.text, "account")


@pytest.mark.parametrize(
    ("values", "zone"),
    [
        ({"account": "denver"}, "America/Denver"),  # the account's own
        ({"account": "plain"}, "America/Los_Angeles"),  # else its connector's
        # An account still to be added: what was typed for it, else its connector's (the
        # draft used to say UTC).
        (
            {"account": NEW_ACCOUNT, "connector": "avidtrak", "acct_timezone": "Asia/Tokyo"},
            "Asia/Tokyo",
        ),
        ({"account": NEW_ACCOUNT, "connector": "leadexec"}, "America/Los_Angeles"),
    ],
)
def test_a_drafts_default_zone_follows_the_one_zone_rule(store, users, values, zone):
    store.create_account("denver", "leadexec", {"timezone": "America/Denver"}, {"api_key": API_KEY})
    store.create_account("plain", "leadexec", {}, {"api_key": API_KEY})
    draft = Draft(store, NOW, users["eddie"], values)
    assert draft.account_zone == zone
    chosen = draft.account
    if chosen is not None:
        # What a dataset of that account without a zone of its own is shown in.
        dataset = store.create_dataset(DatasetSpec("d_" + chosen.name, chosen.name, "leads"))
        assert dataset_zone(store, dataset) == zone


# -- Details ----------------------------------------------------------------------------------


def test_details_offer_the_connectors_reports_and_typed_parameters(editor, acme_account):
    page = to_details(editor, "acme").page.text
    assert re.search(r'<option value="leads" selected>Leads</option>', page)
    lid = re.search(r'<input id="param-lid"[^>]*>', page, re.S).group(0)
    assert 'type="number"' in lid
    assert "required" in lid
    assert "The lead type id (LID)" in page
    assert 'value="America/Los_Angeles"' in page  # the account's zone


@pytest.mark.parametrize(
    ("choices", "shown", "hidden"),
    [
        ({"duration": "default"}, [], ["report-date", "specific-date", "start-date-type"]),
        (
            {"duration": "date", "report_date": "specific"},
            ["report-date", "specific-date"],
            ["days-back", "start-date-type"],
        ),
        (
            {"duration": "date", "report_date": "relative"},
            ["report-date", "days-back"],
            ["specific-date", "end-date-type"],
        ),
        (
            {"duration": "range", "start_date_type": "specific", "end_date_type": "relative"},
            ["start-date-type", "start-date", "end-date-type", "end-days-back"],
            ["report-date", "start-days-back", "end-date"],
        ),
        (
            {"duration": "range", "start_date_type": "relative", "end_date_type": "specific"},
            ["start-days-back", "end-date"],
            ["start-date", "end-days-back", "days-back"],
        ),
    ],
)
def test_date_controls_appear_and_disappear_with_the_choices(
    editor, acme_account, choices, shown, hidden
):
    panes = to_details(editor, "acme")
    part = panes.live("/wizard/part/dates", **choices).text
    assert part.lstrip().startswith('<div id="date-controls"')
    assert has_control(part, "duration")
    assert has_control(part, "window")
    for control in shown:
        assert has_control(part, control), control
    for control in hidden:
        assert not has_control(part, control), control


def test_each_sub_choice_re_renders_only_its_part_and_the_window(editor, acme_account):
    panes = to_details(editor, "acme")
    start = panes.live("/wizard/part/start", duration="range", start_date_type="relative").text
    assert start.lstrip().startswith('<div id="start-controls"')
    assert has_control(start, "start-days-back")
    assert not has_control(start, "end-date")
    assert 'id="window" data-testid="window"' in start
    assert 'hx-swap-oob="true"' in start
    single = panes.live("/wizard/part/single", duration="date", report_date="relative").text
    assert has_control(single, "days-back")
    assert not has_control(single, "duration")


def test_avidtrak_date_controls_carry_its_own_labels(editor, calls_account):
    panes = to_details(editor, "calls")
    ranged = panes.live(
        "/wizard/part/dates", duration="range", start_date_type="specific", end_date_type="relative"
    ).text
    for label in ("Date From", "Select Specific Date From", "Date To", "Date To Offset"):
        assert f">{label}\n" in ranged or f">{label}<" in ranged, label
    assert "Days Back to End At" not in ranged
    assert "Start Date" not in ranged
    relative = panes.live("/wizard/part/single", duration="date", report_date="relative").text
    assert "Date Offset" in relative
    assert "Days Back" not in relative


def test_salesexec_uses_the_seeds_labels(editor, sales_account):
    panes = to_details(editor, "sales")
    ranged = panes.live(
        "/wizard/part/dates", duration="range", start_date_type="relative", end_date_type="relative"
    ).text
    assert "Days Back to Start From" in ranged
    assert "Days Back to End At" in ranged
    assert "Start Date" in ranged
    assert "End Date" in ranged


def test_an_undated_report_shows_no_date_controls(editor, sales_account):
    panes = to_details(editor, "sales")
    part = panes.live("/wizard/part/report", report="leads_awaiting_import_count").text
    assert not has_control(part, "duration")
    assert not has_control(part, "window")
    assert "takes no dates" in part
    assert has_control(part, "param-lead_type_uid")  # its parameter is still asked for
    page = panes.press(report="leads_awaiting_import_count", duration="date", date="2026-11-01")
    assert panes.step == "scheduling", page.text
    assert "partition" not in re.search(
        r'<select id="update-method".*?</select>', page.text, re.S
    ).group(0)


WINDOWS = [
    ("acme", "America/Los_Angeles", {"duration": "default"}, "2026-11-22 in"),
    ("acme", "America/Los_Angeles", LAST_WEEK, "2026-11-16 .. 2026-11-22 in"),
    (
        "sales",
        "UTC",
        {"duration": "date", "report_date": "specific", "date": "2026-11-01"},
        "2026-11-01 in",
    ),
    ("sales", "UTC", RANGE, "2026-11-02 .. 2026-11-08 in"),
    (
        "calls",
        "America/New_York",
        {
            "duration": "range",
            "start_date_type": "relative",
            "from_days_back": "10",
            "end_date_type": "relative",
            "to_days_back": "5",
        },
        "2026-11-13 .. 2026-11-18 in",
    ),
    (
        "calls",
        "America/New_York",
        {
            "duration": "range",
            "start_date_type": "specific",
            "from_date": "2026-11-10",
            "end_date_type": "relative",
            "to_days_back": "0",
        },
        "2026-11-10 .. 2026-11-23 in",
    ),
]


@pytest.mark.parametrize(("account", "zone", "controls", "covers"), WINDOWS)
def test_the_window_of_the_date_controls_is_shown_live(
    editor, acme_account, sales_account, calls_account, account, zone, controls, covers
):
    panes = to_details(editor, account)
    line = panes.live("/wizard/part/window", **controls).text
    assert line.lstrip().startswith('<p id="window"')
    assert f"This selection covers {covers} {zone}" in html.unescape(line)


def test_the_window_follows_the_time_zone(editor, acme_account):
    panes = to_details(editor, "acme")
    line = panes.live("/wizard/part/window", timezone="Asia/Tokyo", **LAST_WEEK).text
    assert "2026-11-17 .. 2026-11-23 in Asia/Tokyo" in line  # already the 24th in Tokyo
    assert "unknown time zone" in panes.live("/wizard/part/window", timezone="Nowhere").text


@pytest.mark.parametrize(
    ("account", "controls", "report", "expected"),
    [
        ("acme", {"param_lid": "271"}, "leads", {}),
        ("acme", {"param_lid": "271", **LAST_WEEK}, "leads", {"days_back": 7}),
        (
            "sales",
            {"duration": "date", "report_date": "specific", "date": "2026-11-01"},
            "all_leads",
            {"date": "2026-11-01"},
        ),
        ("sales", RANGE, "closed_leads", {"from_date": "2026-11-02", "to_date": "2026-11-08"}),
        (
            "calls",
            {
                "duration": "range",
                "start_date_type": "relative",
                "from_days_back": "10",
                "end_date_type": "relative",
                "to_days_back": "5",
            },
            "offline_portal_calls",
            {"from_days_back": 10, "to_days_back": 5},
        ),
        (
            "calls",
            {
                "duration": "range",
                "start_date_type": "relative",
                "from_days_back": "9",
                "end_date_type": "specific",
                "to_date": "2026-11-20",
            },
            "geographical_data",
            {"from_days_back": 9, "to_date": "2026-11-20"},
        ),
    ],
)
def test_each_connector_saves_the_date_selection_its_controls_describe(
    editor, store, acme_account, sales_account, calls_account, account, controls, report, expected
):
    panes = to_details(editor, account)
    panes.press(report=report, **controls)
    assert panes.step == "scheduling", panes.page.text
    panes.press()
    page = panes.press("save", name=f"{account}_{report}")
    assert page.status_code == 303, page.text
    dataset = store.get_dataset(f"{account}_{report}")
    assert (dataset.report, dataset.date_selection.as_json()) == (report, expected)


@pytest.mark.parametrize(
    ("controls", "control", "message"),
    [
        ({"param_lid": ""}, "param_lid", "Enter the LID."),
        ({"param_lid": "two"}, "param_lid", "whole number"),
        (
            {"param_lid": "271", "duration": "date", "report_date": "relative", "days_back": "-3"},
            "days_back",
            "0 or more",
        ),
        (
            {
                "param_lid": "271",
                "duration": "date",
                "report_date": "specific",
                "date": "2026-12-24",
            },
            "date",
            "in the future",
        ),
        ({"param_lid": "271", **RANGE, "to_date": "2026-11-01"}, "to_date", "after it ends"),
        ({"param_lid": "271", **RANGE, "from_date": ""}, "from_date", "Choose the start date."),
        ({"param_lid": "271", **RANGE, "to_date": ""}, "to_date", "Choose the end date."),
        ({"param_lid": "271", "timezone": "Atlantis/Main"}, "timezone", "unknown time zone"),
    ],
)
def test_details_errors_are_shown_next_to_their_fields(
    editor, acme_account, controls, control, message
):
    panes = to_details(editor, "acme")
    page = panes.press(**controls)
    assert page.status_code == 422
    assert panes.step == "details"
    assert message in error_next_to(page.text, control)


def test_load_preview_shows_the_first_rows_and_saves_nothing(editor, store, settings, acme_account):
    panes = to_details(editor, "acme")
    answer = panes.live("/wizard/preview", param_lid="271", **LAST_WEEK)
    assert answer.status_code == 200, answer.text
    table = lxml.html.fromstring(answer.text).get_element_by_id("preview-table")
    header = [th.text_content() for th in table.iter("th")]
    rows = table.findall(".//tbody/tr")
    assert len(rows) == 10
    assert "uid" in header or "UID" in header
    assert "2026-11-16 .. 2026-11-22 in America/Los_Angeles" in answer.text
    assert "Nothing was saved" in answer.text
    assert store.list_datasets() == []
    assert not settings.warehouse_path.exists()


def test_load_preview_shows_the_vendors_error_in_the_flash_area(editor, store, leadexec_url):
    store.create_account(
        "wrong", "leadexec", {"base_url": f"{leadexec_url}/"}, {"api_key": "nope-0000"}
    )
    panes = to_details(editor, "wrong")
    answer = panes.live("/wizard/preview", param_lid="271")
    assert answer.status_code == 502
    assert answer.headers["HX-Retarget"] == "#flash"
    assert 'class="flash error"' in answer.text
    assert "nope-0000" not in answer.text


def test_load_preview_puts_each_error_next_to_its_field(editor, acme_account):
    panes = to_details(editor, "acme")
    answer = panes.live("/wizard/preview", param_lid="", **RANGE | {"from_date": "", "to_date": ""})
    assert answer.status_code == 422
    assert "HX-Retarget" not in answer.headers  # it lands in the preview box, by the button
    assert error_next_to(answer.text, "param_lid") == "Enter the LID."
    assert error_next_to(answer.text, "from_date") == "Choose the start date."
    assert error_next_to(answer.text, "to_date") == "Choose the end date."
    # The controls come back out of band, in place of the pane's own (which had no errors).
    fragment = lxml.html.fromstring(f"<div>{answer.text}</div>")
    assert fragment.get_element_by_id("report-controls").get("hx-swap-oob") == "true"
    message = fragment.get_element_by_id("preview-error").text_content()
    assert "Choose the start date. Choose the end date." in message


def test_load_preview_marks_a_bad_time_zone_next_to_its_field(editor, acme_account):
    panes = to_details(editor, "acme")
    answer = panes.live("/wizard/preview", param_lid="271", timezone="Atlantis/Main")
    assert answer.status_code == 422
    assert "unknown time zone" in error_next_to(answer.text, "timezone")
    fragment = lxml.html.fromstring(f"<div>{answer.text}</div>")
    assert fragment.get_element_by_id("timezone-control").get("hx-swap-oob") == "true"


def test_the_window_line_names_which_date_is_missing(editor, acme_account):
    panes = to_details(editor, "acme")
    answer = panes.live("/wizard/part/window", **RANGE | {"from_date": "", "to_date": ""})
    window = lxml.html.fromstring(answer.text).text_content().strip()
    assert window == "Choose the start date. Choose the end date."


# -- Scheduling -------------------------------------------------------------------------------


def to_scheduling(browser, account="acme", **details) -> Panes:
    panes = to_details(browser, account)
    panes.press(**({"param_lid": "271"} if account == "acme" else {}) | details)
    assert panes.step == "scheduling", panes.page.text
    return panes


def shown_runs(fragment: str) -> list[str]:
    return re.findall(r'<time datetime="([^"]+)"', fragment)


def test_next_five_runs_of_a_basic_schedule_are_shown_live(editor, acme_account):
    panes = to_scheduling(editor)
    fragment = panes.live(
        "/wizard/part/next_runs", frequency="weekly", days=["MON", "THU"], start_time="06:30"
    ).text
    plan = Schedule.from_flags(weekly="MON,THU@06:30", tz="America/Los_Angeles")
    expected = [local(slot, plan).isoformat() for slot in next_runs(plan, NOW, 5)]
    assert shown_runs(fragment) == expected
    assert "weekly on Mon, Thu at 06:30 America/Los_Angeles" in fragment


@pytest.mark.parametrize(
    ("controls", "flags"),
    [
        (
            {"advanced_kind": "rule", "rule": "FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0"},
            {"rule": "FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0"},
        ),
        (
            {
                "advanced_kind": "cron",
                "cron": "*/20 9-17 * * 1-5",
                "schedule_timezone": "Europe/Paris",
            },
            {"cron": "*/20 9-17 * * 1-5", "tz": "Europe/Paris"},
        ),
    ],
)
def test_next_five_runs_of_an_advanced_schedule_are_shown_live(
    editor, acme_account, controls, flags
):
    panes = to_scheduling(editor)
    fragment = panes.live("/wizard/part/next_runs", schedule_mode="advanced", **controls).text
    plan = Schedule.from_flags(**({"tz": "America/Los_Angeles"} | flags))
    assert shown_runs(fragment) == [local(s, plan).isoformat() for s in next_runs(plan, NOW, 5)]


def test_switching_the_schedule_kind_swaps_its_controls_and_the_runs(editor, acme_account):
    panes = to_scheduling(editor)
    page = panes.page.text
    assert has_control(page, "frequency")
    assert not has_control(page, "start-time")
    assert "it runs when someone presses Run Now" in page
    daily = panes.live("/wizard/part/schedule", frequency="daily").text
    assert daily.lstrip().startswith('<div id="schedule-controls"')
    assert has_control(daily, "start-time")
    assert has_control(daily, "active-from")
    assert len(shown_runs(daily)) == 5
    assert 'hx-swap-oob="true"' in daily
    weekly = panes.live("/wizard/part/schedule", frequency="weekly").text
    assert has_control(weekly, "day-mon")
    assert has_control(weekly, "day-sun")
    advanced = panes.live(
        "/wizard/part/schedule", schedule_mode="advanced", advanced_kind="rule"
    ).text
    assert has_control(advanced, "rule")
    assert not has_control(advanced, "frequency")


@pytest.mark.parametrize(
    ("controls", "control", "message"),
    [
        ({"frequency": "minutes", "every_n": "0"}, "every_n", "1 or more"),
        ({"frequency": "weekly", "start_time": "06:00"}, "days", "at least one day"),
        (
            {"frequency": "daily", "start_time": "06:00", "active_from": "9", "active_to": "9"},
            "active_from",
            "not two different hours",
        ),
        (
            {"schedule_mode": "advanced", "advanced_kind": "cron", "cron": "every day"},
            "cron",
            "not a cron expression",
        ),
        ({"retry": "retry", "retry_every": "0", "retries": "3"}, "retry_every", "1 or more"),
        ({"update_method": "merge", "merge_key": ""}, "merge_key", "column(s) to merge on"),
    ],
)
def test_scheduling_errors_are_shown_next_to_their_fields(
    editor, acme_account, controls, control, message
):
    panes = to_scheduling(editor)
    page = panes.press(**controls)
    assert page.status_code == 422
    assert panes.step == "scheduling"
    assert message in error_next_to(page.text, control)


def test_retry_and_failure_controls_state_what_leadferry_does(editor, acme_account):
    panes = to_scheduling(editor)
    assert "Do not retry" in panes.page.text
    assert "marks the dataset as failing and alerts its owner" in panes.page.text
    part = panes.live("/wizard/part/retry", retry="retry").text
    assert has_control(part, "retry-every")
    assert has_control(part, "retries")
    assert not has_control(panes.live("/wizard/part/retry", retry="none").text, "retries")


def test_update_method_controls_follow_the_report(editor, acme_account):
    panes = to_scheduling(editor)
    menu = re.search(r'<select id="update-method".*?</select>', panes.page.text, re.S).group(0)
    assert all(f'value="{m}"' in menu for m in ("replace", "append", "merge", "partition"))
    assert not has_control(panes.page.text, "merge-key")
    merge = panes.live("/wizard/part/update", update_method="merge").text
    assert re.search(r'id="merge-key"[^>]*value="uid"', merge)
    assert has_control(merge, "incremental")
    assert not has_control(merge, "lookback")
    incremental = panes.live("/wizard/part/update", update_method="merge", incremental="on").text
    assert has_control(incremental, "lookback")
    assert "checked" in incremental


# -- Name & Describe, Save ----------------------------------------------------------------------


def test_the_name_is_checked_next_to_its_field(editor, store, acme_account):
    create_leads(store)
    panes = to_scheduling(editor)
    panes.press()
    assert panes.step == "name"
    assert re.search(r'id="owner"[^>]*value="eddie"', panes.page.text)
    bad = panes.live("/wizard/part/name_check", name="Leads-2026").text
    assert "invalid dataset name" in bad
    assert 'id="name-error"' in bad
    assert "already exists" in panes.live("/wizard/part/name_check", name="acme_leads").text
    assert "new_leads is free" in panes.live("/wizard/part/name_check", name="new_leads").text
    page = panes.press("save", name="acme_leads")
    assert page.status_code == 422
    assert "already exists" in error_next_to(page.text, "name")
    page = panes.press("save", name="")
    assert error_next_to(page.text, "name") == "Enter a name."


def test_the_whole_flow_creates_a_dataset_with_a_range_and_a_schedule(editor, store, acme_account):
    panes = to_details(editor, "acme")
    panes.press(param_lid="272", timezone="America/Chicago", **RANGE)
    assert panes.step == "scheduling"
    assert re.search(r'id="schedule-timezone"[^>]*value="America/Chicago"', panes.page.text)
    panes.press(
        frequency="weekly",
        days=["MON", "WED", "FRI"],
        start_time="05:45",
        active_from="",
        active_to="",
        retry="retry",
        retry_every="15",
        retries="2",
        when_failing="pause",
        update_method="merge",
        merge_key="uid",
        incremental="on",
        lookback="30",
    )
    assert panes.step == "name", panes.page.text
    assert "weekly on Mon, Wed, Fri at 05:45 America/Chicago" in panes.page.text
    assert summary_of(panes.page.text)["Display name"] == "(its name)"
    page = panes.press(
        "save", name="acme_range", display_name="Range leads", description="LID 272, early November"
    )
    assert page.status_code == 303
    assert page.headers["location"] == "/datasets/acme_range"
    dataset = store.get_dataset("acme_range")
    assert dataset.account == "acme"
    assert dataset.params == {"lid": 272}
    assert dataset.date_selection.as_json() == {"from_date": "2026-11-02", "to_date": "2026-11-08"}
    assert dataset.timezone == "America/Chicago"
    assert Schedule.parse(dataset.schedule) == Schedule.from_flags(
        weekly="MON,WED,FRI@05:45", tz="America/Chicago"
    )
    assert (dataset.retry_every, dataset.retries, dataset.when_failing) == (15, 2, "pause")
    assert (dataset.update_method, dataset.merge_key) == ("merge", None)
    assert dataset.incremental == {"lookback_minutes": 30}
    assert (dataset.description, dataset.owner) == ("LID 272, early November", "eddie")
    assert dataset.display_name == "Range leads"
    assert dataset.state.next_run_at == next_runs(Schedule.parse(dataset.schedule), NOW, 1)[0]


def summary_of(page: str) -> dict[str, str]:
    summary = lxml.html.fromstring(page).get_element_by_id("summary")
    labels = [dt.text_content().strip() for dt in summary.iter("dt")]
    return dict(zip(labels, (dd.text_content().strip() for dd in summary.iter("dd")), strict=True))


def test_the_summary_states_the_rule_and_every_setting(editor, acme_account):
    panes = to_details(editor, "acme")
    panes.press(
        param_lid="272",
        duration="range",
        start_date_type="relative",
        from_days_back="10",
        end_date_type="relative",
        to_days_back="5",
    )
    panes.press(
        frequency="daily",
        start_time="06:00",
        retry="retry",
        retry_every="15",
        retries="2",
        when_failing="pause",
        stale_after="1440",
        update_method="merge",
        merge_key="uid",
        incremental="on",
        lookback="30",
    )
    assert panes.step == "name", panes.page.text
    summary = summary_of(panes.page.text)
    assert summary["Account"] == "acme (LeadExec)"
    assert summary["Report"] == "Leads"
    assert summary["LID"] == "272"
    assert summary["Dates"] == (
        "10 days back to 5 days back: 2026-11-13 .. 2026-11-18 in America/Los_Angeles"
        " (6 days) today"
    )
    assert summary["Time zone"] == "America/Los_Angeles"
    assert summary["Schedule"].startswith("daily at 06:00")
    assert summary["Retries"] == "every 15 minutes, up to 2 times"
    assert summary["After the last failure"].startswith("Pause the schedule")
    assert summary["Stale-data alert"] == "after 1440 minutes"
    assert summary["Update method"] == (
        "Merge: insert or update rows by a key on uid; incremental, re-reading 30 minutes back"
    )
    assert summary["Owner"] == "eddie"


def test_no_pane_compares_itself_with_the_commercial_product(editor, acme_account):
    panes = to_scheduling(editor)
    assert "commercial" not in panes.page.text
    assert "marks the dataset as failing" in panes.page.text


HOOK = "https://hooks.example.com/leadferry?token=hook-secret-5521"


def test_alert_targets_are_set_on_the_scheduling_pane(editor, store, acme_account):
    panes = to_scheduling(editor)
    page = panes.press(alert_emails="ops@example.com nope", alert_webhook="ftp://x")
    assert page.status_code == 422
    assert "comma-separated" in error_next_to(page.text, "alert_emails")
    assert "http" in error_next_to(page.text, "alert_webhook")
    panes.press(alert_emails="ops@example.com, oncall@example.com", alert_webhook=HOOK)
    assert panes.step == "name", panes.page.text
    assert summary_of(panes.page.text)["Alerts to"] == (
        "ops@example.com, oncall@example.com, https://hooks.example.com/leadferry"
    )
    assert panes.press("save", name="alerted").status_code == 303
    dataset = store.get_dataset("alerted")
    assert dataset.alert_emails == ["ops@example.com", "oncall@example.com"]
    assert dataset.alert_webhook == HOOK


def test_edit_keeps_the_webhook_unshown_until_replaced_or_removed(editor, store, acme_account):
    from leadferry.service.datasets import schedule_changes, set_schedule

    create_leads(store)
    changes = schedule_changes(None, alert_webhook=HOOK, alert_emails=["ops@example.com"])
    set_schedule(store, "acme_leads", changes, NOW)
    panes = Panes(editor, "/datasets/acme_leads/edit")
    panes.press()
    panes.press(param_lid="271")
    assert panes.step == "scheduling"
    assert re.search(r'id="alert-emails"[^>]*value="ops@example.com"', panes.page.text)
    assert "hook-secret-5521" not in panes.page.text
    assert "https://hooks.example.com/leadferry" in panes.page.text
    panes.press()
    assert summary_of(panes.page.text)["Alerts to"].endswith("https://hooks.example.com/leadferry")
    assert panes.press("save").status_code == 303
    assert store.get_dataset("acme_leads").alert_webhook == HOOK  # kept
    panes = Panes(editor, "/datasets/acme_leads/edit")
    panes.press()
    panes.press()
    panes.press(alert_webhook_remove="on", alert_emails="")
    assert summary_of(panes.page.text)["Alerts to"] == "the service's alert targets only"
    assert panes.press("save").status_code == 303
    saved = store.get_dataset("acme_leads")
    assert (saved.alert_webhook, saved.alert_emails) == (None, [])
    for answer in panes.responses:
        assert "hook-secret-5521" not in answer.text


def test_back_keeps_what_was_entered(editor, acme_account):
    panes = to_scheduling(editor, param_lid="271", **LAST_WEEK)
    panes.press("back")
    assert panes.step == "details"
    page = panes.page.text
    assert re.search(r'id="param-lid"[^>]*value="271"', page)
    assert re.search(r'id="days-back"[^>]*value="7"', page)
    assert "2026-11-16 .. 2026-11-22" in page


def test_save_checks_every_pane_again(editor, store, acme_account):
    panes = to_scheduling(editor)
    panes.press()
    page = panes.press("save", name="tampered", param_lid="not-a-number")
    assert page.status_code == 422
    assert panes.step == "details"
    assert "whole number" in error_next_to(page.text, "param_lid")
    assert store.list_datasets() == []


# -- Edit -------------------------------------------------------------------------------------


def create_leads(store, **overrides: Any):
    from leadferry.service.datasets import create_dataset, schedule_changes, set_schedule
    from leadferry.store import DatasetSpec

    spec = DatasetSpec(
        name="acme_leads",
        account="acme",
        report="leads",
        params={"lid": 271},
        date_selection=DateSelection(from_days_back=10, to_days_back=5),
        update_method="merge",
        merge_key="uid,lid",
        description="The leads",
        owner="ada",
    )
    create_dataset(store, spec, NOW)
    plan = Schedule.from_flags(
        rule="FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0",
        tz="America/Los_Angeles",
        start_at="2026-12-01T00:00",
    )
    set_schedule(
        store, "acme_leads", schedule_changes(plan, retry_every=5, retries=4, stale_after=120), NOW
    )
    return store.get_dataset("acme_leads")


def test_edit_shows_the_saved_dataset_and_saving_unchanged_keeps_it(editor, store, acme_account):
    before = create_leads(store)
    panes = Panes(editor, "/datasets/acme_leads/edit")
    assert "Edit acme_leads" in panes.page.text
    assert "Add an account" not in panes.page.text
    panes.press()
    assert panes.step == "details"
    page = panes.page.text
    assert re.search(r'<option value="range" selected>', page)
    assert re.search(r'id="start-days-back"[^>]*value="10"', page)
    assert re.search(r'id="end-days-back"[^>]*value="5"', page)
    panes.press()
    assert panes.step == "scheduling"
    page = panes.page.text
    assert re.search(r'<option value="advanced" selected>', page)
    assert re.search(r'id="rule"[^>]*value="FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0"', page)
    assert re.search(r'id="merge-key"[^>]*value="uid,lid"', page)
    panes.press()
    assert panes.step == "name"
    assert re.search(r'id="name"[^>]*value="acme_leads"[^>]*readonly', panes.page.text, re.S)
    page = panes.press("save")
    assert page.status_code == 303
    assert page.headers["location"] == "/datasets/acme_leads"
    after = store.get_dataset("acme_leads")
    assert after.spec == before.spec


def test_edit_saves_changes_through_the_service(editor, store, acme_account):
    create_leads(store)
    store.create_account("acme2", "leadexec", {}, {"api_key": "another-key-1234"})
    panes = Panes(editor, "/datasets/acme_leads/edit")
    menu = re.search(r'<select id="account".*?</select>', panes.page.text, re.S).group(0)
    assert "acme2" in menu
    panes.press(account="acme2")
    panes.press(param_lid="272", **LAST_WEEK)
    panes.press(
        schedule_mode="basic", frequency="daily", start_time="07:00", update_method="replace"
    )
    page = panes.press("save", display_name="x" * 201, name="renamed")
    assert error_next_to(page.text, "display_name") == "Shorten the display name to 200 characters."
    page = panes.press(
        "save", description="Changed", owner="eddie", name="renamed", display_name="Leads, LID 272"
    )
    assert page.status_code == 303
    dataset = store.get_dataset("acme_leads")
    assert (dataset.account, dataset.params, dataset.date_selection) == (
        "acme2",
        {"lid": 272},
        DateSelection(days_back=7),
    )
    assert Schedule.parse(dataset.schedule) == Schedule.from_flags(
        daily="07:00", tz="America/Los_Angeles", start_at="2026-12-01T00:00"
    )
    assert (dataset.update_method, dataset.merge_key) == ("replace", None)
    assert (dataset.description, dataset.owner) == ("Changed", "eddie")
    assert (dataset.name, dataset.title) == ("acme_leads", "Leads, LID 272")
    assert (dataset.retry_every, dataset.retries) == (5, 4)
    again = Panes(editor, "/datasets/acme_leads/edit")
    for _pane in ("details", "scheduling", "name"):
        again.press()
    assert re.search(r'id="display-name"[^>]*value="Leads, LID 272"', again.page.text)


def test_clone_opens_add_dataset_with_every_setting_but_the_name(editor, store, acme_account):
    before = create_leads(store)
    assert 'href="/datasets/new?clone=acme_leads"' in editor.get("/datasets/acme_leads").text
    panes = Panes(editor, "/datasets/new?clone=acme_leads")
    assert "Add DataSet" in panes.page.text
    for _pane in ("details", "scheduling", "name"):
        panes.press()
        assert panes.step == _pane, panes.page.text
    assert re.search(r'id="name"[^>]*value=""', panes.page.text)
    assert panes.press("save").status_code == 422  # a clone needs a name of its own
    assert error_next_to(panes.page.text, "name") == "Enter a name."
    assert panes.press("save", name="acme_leads").status_code == 422
    assert panes.press("save", name="acme_leads_copy").status_code == 303

    clone = store.get_dataset("acme_leads_copy")
    same = ("account", "report", "params", "date_selection", "update_method", "merge_key")
    assert {k: getattr(clone, k) for k in same} == {k: getattr(before, k) for k in same}
    assert (clone.schedule, clone.retry_every, clone.retries, clone.stale_after) == (
        before.schedule,
        before.retry_every,
        before.retries,
        before.stale_after,
    )
    assert (clone.description, clone.owner) == ("The leads", "eddie")
    assert editor.get("/datasets/new?clone=nothing_here").status_code == 404
