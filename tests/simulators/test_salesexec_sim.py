"""The SalesExec simulator against vendor-apis.md section 2, in-process.

Field names and paths are spelled out here from the spec (not imported from the simulator), so a
typo on either side fails a test.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pydantic
import pytest
import time_machine
from starlette.testclient import TestClient

from leadferry.simulators import salesexec as salesexec_sim

NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)
WEEK = {"startDate": "2026-11-16T00:00:00Z", "endDate": "2026-11-23T00:00:00Z"}
WEEK_START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
WEEK_END = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
CONFIG = salesexec_sim.Settings(leads=3000, days=10, users=["alice:s3cret", "bob:pa:ss:word"])
DENIED = {"Message": "Authorization has been denied for this request."}
BAD_LOGIN = {
    "error": "invalid_grant",
    "error_description": "The user name or password is incorrect.",
}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z")

LEAD = (
    "LeadUID", "LeadGuid", "LeadTypeUID", "LeadTypeName", "LeadSourceName", "CampaignName",
    "FirstName", "LastName", "Email", "Phone", "Address", "City", "State", "Zip",
    "LifeCycleStageName", "LeadStatusName", "AssignedUserName", "BranchName", "CreatedUtc",
    "LastUpdatedUtc",
)  # fmt: skip
ACTION = (
    "ActionUID", "LeadUID", "LeadTypeUID", "ActionTypeName", "DispositionName", "UserAccountUID",
    "UserName", "BranchUID", "BranchName", "Notes", "ActionDateUtc",
)  # fmt: skip
# path -> (Simulation method, columns, the timestamp the window filters on, the row's UID)
ROW_REPORTS = {
    "/api/Actions": ("actions", ACTION, "ActionDateUtc", "ActionUID"),
    "/api/Leads": ("leads", LEAD, "CreatedUtc", "LeadUID"),
    "/api/Leads/Closed": (
        "closed_leads",
        (*LEAD, "ClosedUtc", "CloseReason"),
        "ClosedUtc",
        "LeadUID",
    ),
    "/api/Leads/LastUpdated": ("last_updated_leads", LEAD, "LastUpdatedUtc", "LeadUID"),
}
COUNT_REPORTS = {
    "/api/Reports/BranchLeadCount": ("BranchUID", "BranchName", "LeadCount"),
    "/api/Leads/AwaitingImport/Count": ("LeadTypeUID", "Count"),
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def login(client: TestClient, user: str = "alice", password: str = "s3cret") -> str:
    answer = client.post(
        "/token", data={"grant_type": "password", "username": user, "password": password}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


@pytest.fixture(scope="module")
def truth() -> salesexec_sim.Simulation:
    return salesexec_sim.Simulation(CONFIG, NOW)


@pytest.fixture(scope="module")
def module_clock() -> Clock:
    return Clock(NOW)


@pytest.fixture(scope="module")
def salesexec_app(module_clock):
    """One app for the module (building one takes longer than most tests)."""
    return salesexec_sim.create_app(CONFIG, NOW, clock=module_clock)


@pytest.fixture
def clock(module_clock) -> Clock:
    """The app's clock, back at NOW for every test."""
    module_clock.now = NOW
    return module_clock


@pytest.fixture
def anonymous(salesexec_app, clock) -> Iterator[TestClient]:
    """The simulator with no token sent."""
    with TestClient(salesexec_app) as client:
        yield client


@pytest.fixture
def salesexec_api(anonymous) -> TestClient:
    """The simulator, logged in as alice (the token goes in the AuthToken header)."""
    anonymous.headers["AuthToken"] = login(anonymous)
    return anonymous


def fetch_all(client: TestClient, path: str, page_size: int = 1000, **params) -> list[dict]:
    rows: list[dict] = []
    page = 1
    while True:
        answer = client.get(path, params={**params, "page": page, "pageSize": page_size})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows += body["Results"]
        if not body["Results"] or len(rows) >= body["TotalCount"]:
            assert len(rows) == body["TotalCount"]
            return rows
        page += 1


# -- login -------------------------------------------------------------------------------------


def test_login_answers_a_bearer_token(anonymous):
    answer = anonymous.post(
        "/token", data={"grant_type": "password", "username": "alice", "password": "s3cret"}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["access_token", "token_type", "expires_in", "userName"]
    assert uuid.UUID(body["access_token"])
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert body["userName"] == "alice"


def test_every_login_gets_its_own_token(anonymous):
    assert login(anonymous) != login(anonymous)


def test_passwords_may_hold_colons(anonymous):
    assert login(anonymous, "bob", "pa:ss:word")


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "wrong"), ("carol", "s3cret"), ("alice", ""), ("ALICE", "s3cret"), ("", "")],
)
def test_a_bad_login_is_an_invalid_grant(anonymous, user, password):
    answer = anonymous.post(
        "/token", data={"grant_type": "password", "username": user, "password": password}
    )
    assert answer.status_code == 400
    assert answer.json() == BAD_LOGIN


@pytest.mark.parametrize("grant", [{"grant_type": "client_credentials"}, {}])
def test_a_grant_other_than_password_is_unsupported(anonymous, grant):
    answer = anonymous.post("/token", data={**grant, "username": "alice", "password": "s3cret"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "unsupported_grant_type"}


@pytest.mark.parametrize("login_text", ["alice", ":secret"])
def test_a_user_setting_must_be_a_name_and_a_password(login_text):
    with pytest.raises(pydantic.ValidationError):
        salesexec_sim.Settings(users=[login_text])


# -- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["AuthToken", "Authorization"])
def test_the_token_travels_in_authtoken_or_as_a_bearer(anonymous, header):
    token = login(anonymous)
    value = token if header == "AuthToken" else f"Bearer {token}"
    answer = anonymous.get("/api/Leads", params=WEEK, headers={header: value})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"AuthToken": "garbage"},
        {"AuthToken": str(uuid.UUID(int=7))},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Basic YWxpY2U6czNjcmV0"},
    ],
)
def test_a_missing_or_unknown_token_is_denied(anonymous, headers):
    answer = anonymous.get("/api/Leads", params=WEEK, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == DENIED


def test_a_token_expires_after_its_ttl_and_a_new_login_works(anonymous, clock):
    old = login(anonymous)
    clock.now = NOW + dt.timedelta(seconds=86398)
    assert anonymous.get("/api/Leads", params=WEEK, headers={"AuthToken": old}).status_code == 200
    clock.now = NOW + dt.timedelta(seconds=86399)
    expired = anonymous.get("/api/Leads", params=WEEK, headers={"AuthToken": old})
    assert expired.status_code == 401
    assert expired.json() == DENIED
    new = login(anonymous)
    assert anonymous.get("/api/Leads", params=WEEK, headers={"AuthToken": new}).status_code == 200
    assert anonymous.get("/api/Leads", params=WEEK, headers={"AuthToken": old}).status_code == 401


def test_a_revoked_token_is_refused_and_stays_gone():
    config = CONFIG.model_copy(update={"revoke_rate": 1.0})
    with TestClient(salesexec_sim.create_app(config, NOW)) as client:
        token = login(client)
        for _ in range(2):
            refused = client.get("/api/Leads", params=WEEK, headers={"AuthToken": token})
            assert (refused.status_code, refused.json()) == (401, DENIED)


def test_the_default_clock_starts_at_now_and_runs():
    config = CONFIG.model_copy(update={"token_ttl": 60})
    with (
        time_machine.travel(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), tick=False) as traveller,
        TestClient(salesexec_sim.create_app(config, NOW)) as client,
    ):
        client.headers["AuthToken"] = login(client)
        assert client.get("/api/Leads", params=WEEK).status_code == 200
        traveller.shift(59)
        assert client.get("/api/Leads", params=WEEK).status_code == 200
        traveller.shift(1)
        assert client.get("/api/Leads", params=WEEK).status_code == 401


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*ROW_REPORTS, *COUNT_REPORTS])
def test_every_report_answers_a_page_of_its_columns(salesexec_api, path):
    columns = ROW_REPORTS[path][1] if path in ROW_REPORTS else COUNT_REPORTS[path]
    answer = salesexec_api.get(path, params=WEEK)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert list(body) == ["TotalCount", "Page", "PageSize", "Results"]
    assert body["Page"] == 1
    assert body["PageSize"] == 500
    assert body["Results"]
    for row in body["Results"]:
        assert tuple(row) == columns


@pytest.mark.parametrize("path", ROW_REPORTS)
def test_ids_are_integers_and_times_have_seven_fractional_digits(salesexec_api, path):
    for row in salesexec_api.get(path, params=WEEK).json()["Results"]:
        for name, value in row.items():
            if name.endswith("UID"):
                assert isinstance(value, int)
            elif name.endswith("Utc"):
                assert STAMP.fullmatch(value), value
        if "LeadGuid" in row:
            assert str(uuid.UUID(row["LeadGuid"])) == row["LeadGuid"]


@pytest.mark.parametrize("path", ROW_REPORTS)
def test_a_window_answers_what_the_simulation_holds(salesexec_api, truth, path):
    method, _, stamp, uid = ROW_REPORTS[path]
    expected = getattr(truth, method)(WEEK_START, WEEK_END)
    assert len(expected) > 250  # several pages
    assert fetch_all(salesexec_api, path, page_size=250, **WEEK) == expected
    assert all(WEEK["startDate"] <= row[stamp] < WEEK["endDate"] for row in expected)
    keys = [(row[stamp], row[uid]) for row in expected]
    assert keys == sorted(keys)
    assert len({row[uid] for row in expected}) == len(expected)


@pytest.mark.parametrize("path", ROW_REPORTS)
def test_a_window_starts_inclusive_and_ends_exclusive_to_the_tick(salesexec_api, truth, path):
    method, _, stamp, _ = ROW_REPORTS[path]
    rows = getattr(truth, method)()
    middle = rows[len(rows) // 2]
    at = middle[stamp]
    one_tick_later = salesexec_sim.format_ticks(salesexec_sim.parse_ticks(at) + 1)
    first = salesexec_api.get(path, params={"startDate": at, "endDate": "2027-01-01"}).json()
    assert first["Results"][0] == middle
    before = {"startDate": "2026-01-01", "endDate": at, "pageSize": 1000}
    assert middle not in fetch_all(salesexec_api, path, **before)
    upto = {"startDate": at, "endDate": one_tick_later}
    assert salesexec_api.get(path, params=upto).json()["Results"] == [middle]


def test_ticks_read_and_write_the_vendor_form():
    ticks = salesexec_sim.parse_ticks("2017-12-29T21:03:56.2061577Z")
    assert ticks == 1514581436 * 10_000_000 + 2061577
    assert salesexec_sim.format_ticks(ticks) == "2017-12-29T21:03:56.2061577Z"


@pytest.mark.parametrize("path", ROW_REPORTS)
def test_the_lead_type_filter_splits_a_report(salesexec_api, truth, path):
    method, *_ = ROW_REPORTS[path]
    total = 0
    for lead_type in truth.lead_types:
        rows = fetch_all(salesexec_api, path, leadTypeUID=lead_type.uid, **WEEK)
        assert rows == getattr(truth, method)(WEEK_START, WEEK_END, lead_type.uid)
        assert {row["LeadTypeUID"] for row in rows} == {lead_type.uid}
        total += len(rows)
    assert total == len(getattr(truth, method)(WEEK_START, WEEK_END))


@pytest.mark.parametrize("path", [*ROW_REPORTS, "/api/Reports/BranchLeadCount"])
def test_an_unknown_lead_type_selects_nothing(salesexec_api, path):
    body = salesexec_api.get(path, params={**WEEK, "leadTypeUID": 999_999}).json()
    assert body["TotalCount"] == 0
    assert body["Results"] == []


def test_branch_lead_count_filters_by_lead_type(salesexec_api, truth):
    lead_type = truth.lead_types[0].uid
    params = {**WEEK, "leadTypeUID": lead_type}
    counts = salesexec_api.get("/api/Reports/BranchLeadCount", params=params).json()["Results"]
    leads = fetch_all(salesexec_api, "/api/Leads", **params)
    assert {row["BranchName"]: row["LeadCount"] for row in counts} == Counter(
        lead["BranchName"] for lead in leads
    )


# -- awaiting import ---------------------------------------------------------------------------


def test_awaiting_import_counts_every_lead_type_without_dates(salesexec_api, truth):
    body = salesexec_api.get("/api/Leads/AwaitingImport/Count").json()
    assert body["TotalCount"] == len(truth.lead_types)
    assert [row["LeadTypeUID"] for row in body["Results"]] == [lt.uid for lt in truth.lead_types]
    assert sum(row["Count"] for row in body["Results"]) == 37
    assert body["Results"] == truth.awaiting_import_count()
    with_dates = salesexec_api.get("/api/Leads/AwaitingImport/Count", params=WEEK).json()
    assert with_dates == body


def test_awaiting_import_for_one_lead_type_is_one_row(salesexec_api, truth):
    everything = truth.awaiting_import_count()
    path = "/api/Leads/AwaitingImport/Count"
    for row in everything:
        body = salesexec_api.get(path, params={"leadTypeUID": row["LeadTypeUID"]}).json()
        assert body["Results"] == [row]
        assert body["TotalCount"] == 1
    unknown = salesexec_api.get(path, params={"leadTypeUID": 999_999}).json()
    assert unknown["Results"] == [{"LeadTypeUID": 999_999, "Count": 0}]


# -- paging ------------------------------------------------------------------------------------


def test_pages_cover_the_window_once_and_the_last_is_partial(salesexec_api, truth):
    expected = truth.leads(WEEK_START, WEEK_END)
    size = 320
    pages = -(-len(expected) // size)
    assert len(expected) % size  # so the last page is partial
    rows: list[dict] = []
    for page in range(1, pages + 1):
        body = salesexec_api.get("/api/Leads", params={**WEEK, "page": page, "pageSize": size})
        body = body.json()
        assert (body["TotalCount"], body["Page"], body["PageSize"]) == (len(expected), page, size)
        rows += body["Results"]
    assert len(body["Results"]) == len(expected) - (pages - 1) * size
    assert rows == expected
    past = salesexec_api.get("/api/Leads", params={**WEEK, "page": pages + 1, "pageSize": size})
    assert past.json()["Results"] == []
    assert past.json()["TotalCount"] == len(expected)


def test_page_size_defaults_to_500_and_is_capped_at_1000(salesexec_api):
    default = salesexec_api.get("/api/Leads", params=WEEK).json()
    assert default["TotalCount"] > 1000
    assert (default["Page"], default["PageSize"], len(default["Results"])) == (1, 500, 500)
    capped = salesexec_api.get("/api/Leads", params={**WEEK, "pageSize": 5000}).json()
    assert (capped["PageSize"], len(capped["Results"])) == (1000, 1000)


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"page": -1}, {"page": "x"}, {"pageSize": 0}, {"pageSize": "1.5"}]
)
def test_a_bad_page_is_a_bad_request(salesexec_api, params):
    answer = salesexec_api.get("/api/Leads", params={**WEEK, **params})
    assert answer.status_code == 400
    assert list(answer.json()) == ["Message"]


def test_a_bad_lead_type_is_a_bad_request(salesexec_api):
    answer = salesexec_api.get("/api/Leads", params={**WEEK, "leadTypeUID": "mortgage"})
    assert answer.status_code == 400
    assert "leadTypeUID" in answer.json()["Message"]


# -- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [
        "2026-11-16",
        "2026-11-16T00:00",
        "2026-11-16T00:00:00",
        "2026-11-16T00:00:00Z",
        "2026-11-16T00:00:00+00:00",
        "2026-11-16T00:00:00.000Z",
        "2026-11-16T00:00:00.0000000Z",
        "2026-11-15T16:00:00-08:00",
        "2026-11-16 00:00:00Z",
        "11/16/2026",  # the US spellings .NET model binding also reads
        "2026/11/16",
        "11/16/26",
        "11/16/2026 12:00:00 AM",
    ],
)
def test_iso_dates_are_read_as_utc_instants(salesexec_api, truth, start):
    answer = salesexec_api.get(
        "/api/Leads", params={"startDate": start, "endDate": WEEK["endDate"]}
    )
    assert answer.status_code == 200
    assert answer.json()["TotalCount"] == len(truth.leads(WEEK_START, WEEK_END))


@pytest.mark.parametrize(
    "start",
    [
        "yesterday",
        "13/16/2026",
        "2026-13-01",
        "2026-02-30",
        "2026-11-16T25:00:00Z",
        "2026-11-16T00:00:00.12345678Z",
        "2026-11-16T00:00:00 00:00",  # an unencoded "+" arrives as a space
    ],
)
def test_a_bad_date_is_a_bad_request(salesexec_api, start):
    answer = salesexec_api.get("/api/Leads", params={"startDate": start, "endDate": "2026-11-23"})
    assert answer.status_code == 400
    assert "startDate" in answer.json()["Message"]


@pytest.mark.parametrize("missing", ["startDate", "endDate"])
def test_dated_reports_require_both_dates(salesexec_api, missing):
    params = {k: v for k, v in WEEK.items() if k != missing}
    answer = salesexec_api.get("/api/Leads/Closed", params=params)
    assert answer.status_code == 400
    assert missing in answer.json()["Message"]


def test_an_end_before_the_start_is_a_bad_request_and_an_empty_window_is_empty(salesexec_api):
    backwards = {"startDate": WEEK["endDate"], "endDate": WEEK["startDate"]}
    assert salesexec_api.get("/api/Leads", params=backwards).status_code == 400
    empty = {"startDate": WEEK["startDate"], "endDate": WEEK["startDate"]}
    assert salesexec_api.get("/api/Leads", params=empty).json()["TotalCount"] == 0


# -- routing -----------------------------------------------------------------------------------


def test_paths_and_parameter_names_ignore_case(salesexec_api, truth):
    params = {"STARTDATE": WEEK["startDate"], "enddate": WEEK["endDate"], "PageSize": 1000}
    answer = salesexec_api.get("/api/leads/closed", params=params)
    assert answer.status_code == 200
    assert answer.json()["Results"] == truth.closed_leads(WEEK_START, WEEK_END)[:1000]


def test_an_unknown_path_is_not_found_and_a_post_is_not_allowed(salesexec_api):
    missing = salesexec_api.get("/api/Leads/Open", params=WEEK)
    assert missing.status_code == 404
    assert missing.json()["Message"].startswith("No HTTP resource was found")
    assert salesexec_api.post("/api/Leads", params=WEEK).status_code == 405


# -- the reports agree -------------------------------------------------------------------------


def test_branch_lead_count_is_all_leads_grouped_by_branch(salesexec_api, truth):
    counts = salesexec_api.get("/api/Reports/BranchLeadCount", params=WEEK).json()["Results"]
    leads = fetch_all(salesexec_api, "/api/Leads", **WEEK)
    assert {row["BranchName"]: row["LeadCount"] for row in counts} == Counter(
        lead["BranchName"] for lead in leads
    )
    uids = [row["BranchUID"] for row in counts]
    assert uids == sorted(uids)
    assert all(row["LeadCount"] > 0 for row in counts)
    assert counts == truth.branch_lead_count(WEEK_START, WEEK_END)


def test_closed_leads_are_leads_closed_after_creation(truth):
    leads = {lead["LeadUID"]: lead for lead in truth.leads()}
    closed = truth.closed_leads()
    assert 0.1 < len(closed) / len(leads) < 0.4
    for row in closed:
        lead = leads[row["LeadUID"]]
        assert {k: v for k, v in row.items() if k not in ("ClosedUtc", "CloseReason")} == lead
        assert lead["CreatedUtc"] <= row["ClosedUtc"] <= lead["LastUpdatedUtc"]
        assert row["CloseReason"]
        assert row["LifeCycleStageName"] == "Closed"
    still_open = set(leads) - {row["LeadUID"] for row in closed}
    assert all(leads[uid]["LifeCycleStageName"] != "Closed" for uid in still_open)


def test_actions_belong_to_leads_and_follow_their_creation(truth):
    leads = {lead["LeadUID"]: lead for lead in truth.leads()}
    actions = truth.actions()
    assert 1.0 < len(actions) / len(leads) < 2.5
    per_lead = Counter(action["LeadUID"] for action in actions)
    assert max(per_lead.values()) <= 4
    users = {}
    for action in actions:
        lead = leads[action["LeadUID"]]
        assert action["LeadTypeUID"] == lead["LeadTypeUID"]
        assert lead["CreatedUtc"] <= action["ActionDateUtc"] <= lead["LastUpdatedUtc"]
        user = (action["UserName"], action["BranchUID"], action["BranchName"])
        assert users.setdefault(action["UserAccountUID"], user) == user


def test_last_updated_leads_are_the_leads_by_their_update_time(truth):
    leads = truth.leads()
    updated = truth.last_updated_leads()
    assert sorted(updated, key=lambda row: row["LeadUID"]) == leads
    start, end = "2026-11-13T20:00:00.0000000Z", "2026-11-23T20:00:00.0000000Z"
    for lead in leads:
        assert start <= lead["CreatedUtc"] <= lead["LastUpdatedUtc"] < end
    assert sum(lead["CreatedUtc"] < lead["LastUpdatedUtc"] for lead in leads) > len(leads) / 2


def test_every_lead_has_one_branch_through_its_user(truth):
    branch_of: dict[str, str] = {}
    for lead in truth.leads():
        assert (
            branch_of.setdefault(lead["AssignedUserName"], lead["BranchName"]) == lead["BranchName"]
        )
    assert 4 <= len({lead["BranchName"] for lead in truth.leads()}) <= 6
    assert 3 <= len(truth.lead_types) <= 4


# -- determinism -------------------------------------------------------------------------------


def test_the_same_seed_makes_the_same_data_and_another_seed_other_data():
    again = salesexec_sim.Simulation(CONFIG, NOW)
    same = salesexec_sim.Simulation(CONFIG, NOW)
    other = salesexec_sim.Simulation(CONFIG.model_copy(update={"seed": 2}), NOW)
    assert again.leads() == same.leads()
    assert again.actions() == same.actions()
    assert again.awaiting_import_count() == same.awaiting_import_count()
    assert other.leads() != again.leads()


def test_two_apps_of_one_seed_answer_the_same_bytes():
    bodies = []
    for _ in range(2):
        with TestClient(salesexec_sim.create_app(CONFIG, NOW)) as client:
            client.headers["AuthToken"] = login(client)
            bodies.append(client.get("/api/Actions", params=WEEK).content)
    assert bodies[0] == bodies[1]


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        salesexec_sim.Simulation(CONFIG, dt.datetime(2026, 11, 23))  # noqa: DTZ001


# -- faults ------------------------------------------------------------------------------------


def test_failures_are_500_or_503_everywhere_but_health():
    config = CONFIG.model_copy(update={"fail_rate": 1.0, "leads": 10})
    with TestClient(salesexec_sim.create_app(config, NOW)) as client:
        statuses = Counter()
        for _ in range(10):
            token = client.post("/token", data={"grant_type": "password"})
            report = client.get("/api/Leads", params=WEEK)
            statuses.update([token.status_code, report.status_code])
            if report.status_code == 503:
                assert report.headers["Retry-After"] == "1"
        assert set(statuses) == {500, 503}
        assert client.get("/__health").text == "ok"


def test_over_the_rate_limit_is_429_with_retry_after():
    config = CONFIG.model_copy(update={"rate_limit": 0.01, "leads": 10})
    with TestClient(salesexec_sim.create_app(config, NOW)) as client:
        assert login(client)
        limited = client.post("/token", data={"grant_type": "password"})
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert client.get("/__health").status_code == 200


def test_latency_delays_answers():
    config = CONFIG.model_copy(update={"latency_ms": 60.0, "leads": 10})
    with TestClient(salesexec_sim.create_app(config, NOW)) as client:
        began = time.perf_counter()
        client.post("/token", data={"grant_type": "password"})
        assert time.perf_counter() - began >= 0.06


# -- variants ----------------------------------------------------------------------------------


def test_bearer_only_refuses_a_token_in_authtoken():
    config = CONFIG.model_copy(update={"variant": [salesexec_sim.Variant.BEARER_ONLY]})
    with TestClient(salesexec_sim.create_app(config, NOW)) as client:
        token = login(client)
        params = {"startDate": "2026-11-16", "endDate": "2026-11-17"}
        refused = client.get("/api/Leads", params=params, headers={"AuthToken": token})
        assert refused.status_code == 401
        assert refused.json() == {"Message": "Authorization has been denied for this request."}
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/Leads", params=params, headers=bearer).status_code == 200


def test_login_401_refuses_a_bad_login_with_401():
    config = CONFIG.model_copy(update={"variant": [salesexec_sim.Variant.LOGIN_401]})
    with TestClient(salesexec_sim.create_app(config, NOW)) as client:
        answer = client.post(
            "/token", data={"grant_type": "password", "username": "alice", "password": "no"}
        )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_grant"
