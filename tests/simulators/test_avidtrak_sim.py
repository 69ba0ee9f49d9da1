"""The AvidTrak simulator against vendor-apis.md section 3, in-process."""

from __future__ import annotations

import datetime as dt
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from leadferry.simulators import avidtrak as avidtrak_sim

# Monday 2026-11-23, 12:00 in Los Angeles.
NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)
PIN = "at-7c41-pin"
LA = "America/Los_Angeles"
EMPTY_DAY = "2026-11-18"
# The whole period of the default app, as the API takes it.
ALL = {"startdate": "2026-11-01 00:00:00", "enddate": "2026-11-30 23:59:59"}
DAY = {"startdate": "2026-11-20 00:00:00", "enddate": "2026-11-20 23:59:59"}
OFFLINE, GEO = "offline_portal_calls", "geo_data"


def naive(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def make_app(**options):
    config = avidtrak_sim.Settings(
        **{
            "calls": 3000,
            "days": 10,
            "pin": [PIN, "second-pin"],
            "timezone": LA,
            "empty_days": [EMPTY_DAY],
        }
        | options
    )
    return avidtrak_sim.create_app(config, now=NOW)


@pytest.fixture(scope="module")
def avidtrak_app():
    return make_app()


@pytest.fixture
def avidtrak_api(avidtrak_app):
    with TestClient(avidtrak_app) as client:
        yield client


@pytest.fixture
def truth(avidtrak_app):
    return avidtrak_app.state.simulation


def call(client, path="/webservice/api.php", **params):
    """One API call; ``None`` leaves a parameter out."""
    params = {"pincode": PIN, "format": "json", "method": OFFLINE, **DAY} | params
    return client.get(path, params={k: v for k, v in params.items() if v is not None})


def ok_json(response) -> list[dict]:
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["status"]) == (200, "Success"), body
    return body["data"]


def xml_body(response) -> tuple[int, str, list[dict] | None]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "response"
    data = root.find("data")
    rows = None if len(data) == 0 else [{c.tag: c.text or "" for c in row} for row in data]
    return int(root.findtext("code")), root.findtext("status"), rows


def fetch_all(client, method, window, perpage=1000, **params) -> list[dict]:
    """Every page of a window, until a short page (or code 0: nothing on that page)."""
    rows: list[dict] = []
    for page in range(1, 10_000):
        body = call(client, method=method, page=page, perpage=perpage, **window, **params).json()
        if body["code"] == 0:
            assert body["data"] is None
            break
        assert body["code"] == 200
        rows += body["data"]
        if len(body["data"]) < perpage:
            break
    return rows


def error(response) -> tuple[int, str]:
    assert response.status_code == 200  # errors come in the body
    body = response.json()
    assert body["data"] is None
    return body["code"], body["status"]


# -- rows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [OFFLINE, GEO])
def test_json_pages_hold_exactly_the_truth(avidtrak_api, truth, method):
    rows = fetch_all(avidtrak_api, method, ALL, perpage=700)
    expected = getattr(truth, method)(naive(ALL["startdate"]), naive(ALL["enddate"]))
    assert rows == expected
    if method == OFFLINE:
        assert len(rows) == truth.total_calls == 3000
        assert [r["call_id"] for r in rows] == sorted(r["call_id"] for r in rows)
        assert list(rows[0]) == list(avidtrak_sim.OFFLINE_COLUMNS)
    else:
        assert list(rows[0]) == list(avidtrak_sim.GEO_COLUMNS)


@pytest.mark.parametrize("method", [OFFLINE, GEO])
def test_xml_rows_match_the_json_rows(avidtrak_api, method):
    json_rows = ok_json(call(avidtrak_api, method=method, perpage=1000))
    code, status, rows = xml_body(call(avidtrak_api, method=method, perpage=1000, format="XML"))
    assert (code, status) == (1, "Success")
    assert rows == json_rows
    if method == OFFLINE:  # escaped, and read back
        assert any("&" in r["caller_name"] for r in rows)
        assert any("'" in r["caller_name"] for r in rows)


def test_values_are_strings_in_php_json_style(avidtrak_api):
    response = call(avidtrak_api, **ALL, perpage=1000)
    assert response.headers["content-type"].startswith("application/json")
    text = response.text
    assert text.isascii()  # json_encode escapes non-ASCII as \uXXXX ...
    assert "https:\\/\\/" in text  # ... and "/" as "\/"
    assert ", " not in text.split('"data"')[0]  # compact
    rows = response.json()["data"]
    assert all(isinstance(v, str) for row in rows for v in row.values())


def test_call_rows_are_plausible(truth):
    rows = truth.offline_portal_calls(naive(ALL["startdate"]), naive(ALL["enddate"]))
    assert {r["channel"] for r in rows} == {"PORTAL"}
    assert {r["call_status"] for r in rows} == {"answered", "missed", "voicemail"}
    for r in rows:
        assert (r["recording_url"] == "") == (r["call_status"] == "missed")
        assert (r["duration"] == "0") == (r["call_status"] == "missed")
        assert len(r["caller_number"]) == 10
        assert len(r["caller_name"]) <= 15
    assert "Internet X-Sell" in {r["campaign"] for r in rows}
    assert len({r["caller_number"] for r in rows}) < len(rows)  # people call back


def test_typed_json_sends_numbers():
    with TestClient(make_app(variant=["typed-json"])) as client:
        calls = ok_json(call(client, perpage=5))
        geo = ok_json(call(client, method=GEO, perpage=5))
    assert isinstance(calls[0]["call_id"], int)
    assert isinstance(calls[0]["duration"], int)
    assert isinstance(calls[0]["caller_zip"], str)
    assert isinstance(geo[0]["calls"], int)
    assert isinstance(geo[0]["avg_duration"], float)


def test_all_lite_calls_is_offline_portal_calls(avidtrak_api):
    assert ok_json(call(avidtrak_api, method="all_lite_calls")) == ok_json(call(avidtrak_api))


# -- paths and requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/webservice/api.php",
        "/reseller/acme/webservice/api.php",
        "http://testserver//webservice/api.php",  # a base URL ending in "/", joined naively
    ],
)
def test_the_api_answers_under_any_path_prefix(avidtrak_api, path):
    assert len(ok_json(call(avidtrak_api, path=path, perpage=3))) == 3


@pytest.mark.parametrize("path", ["/", "/api.php", "/webservice/api.php/more", "/webservice/"])
def test_other_paths_are_not_found(avidtrak_api, path):
    assert call(avidtrak_api, path=path).status_code == 404


def test_a_post_form_works_and_overrides_the_query_string(avidtrak_api):
    form = {"pincode": PIN, "format": "xml", "method": GEO, **DAY}
    response = avidtrak_api.post("/webservice/api.php?format=json&pincode=wrong", data=form)
    assert xml_body(response)[0] == 1


def test_health_answers_ok(avidtrak_api):
    response = avidtrak_api.get("/__health")
    assert (response.status_code, response.text) == (200, "ok")


# -- codes ---------------------------------------------------------------------------------------


def test_a_missing_format_means_json(avidtrak_api):
    assert len(ok_json(call(avidtrak_api, format=None, perpage=2))) == 2


@pytest.mark.parametrize(("fmt", "code"), [("json", 3), ("xml", 3)])
def test_a_missing_pincode_is_authentication_required(avidtrak_api, fmt, code):
    response = call(avidtrak_api, pincode=None, format=fmt)
    if fmt == "json":
        assert error(response) == (code, "Authentication Required")
    else:
        assert xml_body(response) == (code, "Authentication Required", None)


def test_a_wrong_pincode_fails_with_401_in_json_and_4_in_xml(avidtrak_api):
    assert error(call(avidtrak_api, pincode="nope")) == (401, "Authentication Failed")
    assert xml_body(call(avidtrak_api, pincode="nope", format="xml")) == (
        4,
        "Authentication Failed",
        None,
    )
    assert ok_json(call(avidtrak_api, pincode="second-pin"))  # every configured pin works


def test_documented_codes_make_json_say_1_and_4():
    with TestClient(make_app(variant=["documented-codes"])) as client:
        assert error(call(client, pincode="nope")) == (4, "Authentication Failed")
        body = call(client, perpage=1).json()
    assert (body["code"], body["status"], len(body["data"])) == (1, "Success", 1)


@pytest.mark.parametrize("fmt", ["csv", "JSONP"])
def test_an_unknown_format_is_code_6_in_json(avidtrak_api, fmt):
    assert error(call(avidtrak_api, format=fmt)) == (6, "Invalid Response Format")


@pytest.mark.parametrize("method", ["all_calls", None, "GEO_DATA"])
def test_an_unknown_method_is_code_404_in_a_200_body(avidtrak_api, method):
    assert error(call(avidtrak_api, method=method)) == (404, "Invalid Request Method")
    assert xml_body(call(avidtrak_api, method=method, format="xml"))[0] == 404


@pytest.mark.parametrize(
    "params",
    [
        {"startdate": None},
        {"enddate": None},
        {"startdate": "11/20/2026"},
        {"startdate": "2026-11-20T00:00:00"},
        {"enddate": "2026-11-31 00:00:00"},
        {"enddate": "2026-11-20 24:00:00"},
        {"page": "0"},
        {"page": "two"},
        {"perpage": "0"},
        {"perpage": "-5"},
        {"orderby": "nope"},
        {"orderby": "calls"},  # a geo column, not a call column
        {"ordertype": "sideways"},
    ],
)
def test_bad_parameters_are_code_0_with_data_null(avidtrak_api, params):
    assert error(call(avidtrak_api, **params)) == (0, "Unknown Error")


@pytest.mark.parametrize(
    "window",
    [
        {"startdate": "2025-01-01 00:00:00", "enddate": "2025-01-31 23:59:59"},
        {"startdate": "2026-11-21 00:00:00", "enddate": "2026-11-20 00:00:00"},
        {"startdate": f"{EMPTY_DAY} 00:00:00", "enddate": f"{EMPTY_DAY} 23:59:59"},
    ],
)
@pytest.mark.parametrize("method", [OFFLINE, GEO])
def test_an_empty_window_is_code_0_with_data_null(avidtrak_api, window, method):
    assert error(call(avidtrak_api, method=method, **window)) == (0, "Unknown Error")
    assert xml_body(call(avidtrak_api, method=method, format="xml", **window)) == (
        0,
        "Unknown Error",
        None,
    )


# -- windows -------------------------------------------------------------------------------------


def test_the_end_of_a_window_is_included(avidtrak_api, truth):
    target = truth.offline_portal_calls(naive(DAY["startdate"]), naive(DAY["enddate"]))[7]
    at = naive(target["call_date"])
    same = {"startdate": target["call_date"], "enddate": target["call_date"]}
    assert target in ok_json(call(avidtrak_api, **same))
    before = (at - dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    rows = ok_json(call(avidtrak_api, startdate=DAY["startdate"], enddate=before, perpage=1000))
    assert target not in rows
    assert all(r["call_date"] < target["call_date"] for r in rows)


def test_a_bare_day_covers_the_whole_day(avidtrak_api, truth):
    bare = {"startdate": "2026-11-20", "enddate": "2026-11-20"}
    rows = ok_json(call(avidtrak_api, **bare, perpage=1000))
    assert rows == truth.offline_portal_calls(naive(DAY["startdate"]), naive(DAY["enddate"]))
    assert {r["call_date"][:10] for r in rows} == {"2026-11-20"}


def test_geo_data_takes_whole_days(avidtrak_api, truth):
    window = {"startdate": "2026-11-19 13:30:00", "enddate": "2026-11-20 08:00:00"}
    rows = ok_json(call(avidtrak_api, method=GEO, **window, perpage=1000))
    assert {r["date"] for r in rows} == {"2026-11-19", "2026-11-20"}
    assert rows == truth.geo_data(naive("2026-11-19 00:00:00"), naive("2026-11-20 23:59:59"))


def test_calls_stay_within_the_period(truth):
    rows = truth.offline_portal_calls(naive("2000-01-01 00:00:00"), naive("2100-01-01 00:00:00"))
    assert len(rows) == 3000
    assert rows[0]["call_date"] >= "2026-11-13 12:00:00"  # days=10 before NOW, in Los Angeles
    assert rows[-1]["call_date"] < "2026-11-23 12:00:00"


# -- paging and order ----------------------------------------------------------------------------


def test_paging_defaults_to_20_per_page_and_ends_with_a_short_page(avidtrak_api, truth):
    expected = truth.offline_portal_calls(naive(DAY["startdate"]), naive(DAY["enddate"]))
    assert len(expected) % 20 != 0
    rows, page = [], 1
    while True:
        data = ok_json(call(avidtrak_api, page=page))
        rows += data
        if len(data) < 20:
            break
        page += 1
    assert page == len(expected) // 20 + 1
    assert rows == expected
    assert error(call(avidtrak_api, page=page + 1)) == (0, "Unknown Error")  # past the end


def test_perpage_is_capped_at_1000(avidtrak_api, truth):
    expected = truth.offline_portal_calls(naive(ALL["startdate"]), naive(ALL["enddate"]))
    first = ok_json(call(avidtrak_api, **ALL, perpage=5000))
    second = ok_json(call(avidtrak_api, **ALL, perpage=5000, page=2))
    assert (len(first), len(second)) == (1000, 1000)
    assert first + second == expected[:2000]


def test_paging_info_is_added_on_request():
    with TestClient(make_app(variant=["paging-info"])) as client:
        body = call(client, perpage=7, page=2).json()
        root = ET.fromstring(call(client, perpage=7, page=2, format="xml").content)
    assert (body["page"], body["perpage"], len(body["data"])) == (2, 7, 7)
    assert body["total"] > 14
    assert (root.findtext("total"), root.findtext("page")) == (str(body["total"]), "2")


def test_no_paging_fields_by_default(avidtrak_api):
    assert set(call(avidtrak_api).json()) == {"code", "status", "data"}


def test_ordertype_desc_reverses_the_default_order(avidtrak_api, truth):
    expected = truth.offline_portal_calls(naive(DAY["startdate"]), naive(DAY["enddate"]))
    rows = ok_json(call(avidtrak_api, ordertype="DESC", perpage=1000))
    assert rows == expected[::-1]


@pytest.mark.parametrize(
    ("method", "column", "key"),
    [(OFFLINE, "duration", int), (OFFLINE, "caller_name", str), (GEO, "avg_duration", float)],
)
def test_orderby_sorts_the_whole_window_before_paging(avidtrak_api, truth, method, column, key):
    pages = [
        ok_json(call(avidtrak_api, method=method, orderby=column, ordertype="desc", page=p))
        for p in (1, 2)
    ]
    everything = getattr(truth, method)(naive(DAY["startdate"]), naive(DAY["enddate"]))
    best = sorted(everything, key=lambda r: key(r[column]), reverse=True)[:40]
    assert [key(r[column]) for r in pages[0] + pages[1]] == [key(r[column]) for r in best]


# -- geographical data agrees with the calls -----------------------------------------------------


def test_geo_rows_agree_with_the_calls(truth):
    calls = truth.offline_portal_calls(naive(ALL["startdate"]), naive(ALL["enddate"]))
    geo = truth.geo_data(naive(ALL["startdate"]), naive(ALL["enddate"]))
    groups = defaultdict(list)
    for c in calls:
        groups[c["call_date"][:10], c["caller_state"], c["caller_city"], c["caller_zip"]].append(c)
    assert len(geo) == len(groups)
    for row in geo:
        mine = groups[row["date"], row["state"], row["city"], row["zip"]]
        statuses = Counter(c["call_status"] for c in mine)
        total = sum(int(c["duration"]) for c in mine)
        assert int(row["calls"]) == len(mine)
        assert int(row["unique_calls"]) == len({c["caller_number"] for c in mine})
        assert int(row["answered_calls"]) == statuses["answered"]
        assert int(row["missed_calls"]) == statuses["missed"]
        assert int(row["total_duration"]) == total
        average = (Decimal(total) / len(mine)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert row["avg_duration"] == str(average)
        assert {c["caller_number"][:3] for c in mine} == {row["area_code"]}
    per_day = Counter()
    for row in geo:
        per_day[row["date"]] += int(row["calls"])
    assert per_day == Counter(c["call_date"][:10] for c in calls)
    assert any(int(r["unique_calls"]) < int(r["calls"]) for r in geo)
    assert {"US", "CA"} <= {r["country"] for r in geo}


# -- generation ----------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes():
    answers = []
    for seed in (1, 1, 2):
        with TestClient(make_app(seed=seed)) as client:
            answers.append(call(client, method=GEO, **ALL, perpage=1000).content)
            answers[-1] += call(client, **ALL, perpage=1000, format="xml").content
    assert answers[0] == answers[1]
    assert answers[0] != answers[2]


def test_empty_days_have_no_calls_at_all(truth):
    calls = truth.offline_portal_calls(naive(ALL["startdate"]), naive(ALL["enddate"]))
    days = Counter(c["call_date"][:10] for c in calls)
    assert EMPTY_DAY not in days
    assert days["2026-11-17"] > 0
    assert days["2026-11-19"] > 0
    assert EMPTY_DAY not in {
        r["date"] for r in truth.geo_data(naive(ALL["startdate"]), naive(ALL["enddate"]))
    }


def test_no_call_falls_in_the_hour_skipped_by_daylight_saving():
    march = dt.datetime(2026, 3, 10, 19, 0, tzinfo=dt.UTC)  # US clocks went forward on March 8
    config = avidtrak_sim.Settings(calls=20_000, days=4, timezone=LA)
    sim = avidtrak_sim.Simulation(config, march)
    rows = sim.offline_portal_calls(naive("2026-03-08 00:00:00"), naive("2026-03-08 23:59:59"))
    hours = Counter(r["call_date"][11:13] for r in rows)
    assert hours["01"] > 0
    assert hours["03"] > 0
    assert hours["02"] == 0


def test_no_calls_means_code_0_everywhere():
    with TestClient(make_app(calls=0)) as client:
        assert error(call(client, **ALL)) == (0, "Unknown Error")
        assert error(call(client, method=GEO, **ALL)) == (0, "Unknown Error")


def test_the_simulation_needs_an_aware_clock():
    with pytest.raises(ValueError, match="aware"):
        avidtrak_sim.Simulation(avidtrak_sim.Settings(), dt.datetime(2026, 11, 23))  # noqa: DTZ001


@pytest.mark.parametrize(
    "options", [{"timezone": "Mars/Olympus"}, {"empty_days": ["11/18/2026"]}, {"fail_rate": 2}]
)
def test_bad_settings_are_refused(options):
    with pytest.raises(ValidationError):
        avidtrak_sim.Settings(**options)


# -- faults --------------------------------------------------------------------------------------


def test_fail_rate_1_answers_500_or_503_but_health_still_works():
    with TestClient(make_app(fail_rate=1)) as client:
        statuses = {call(client).status_code for _ in range(30)}
        assert client.get("/__health").status_code == 200
    assert statuses == {500, 503}


def test_latency_delays_every_answer():
    with TestClient(make_app(latency_ms=60, calls=100)) as client:
        started = time.perf_counter()
        call(client, pincode="nope")
        assert time.perf_counter() - started >= 0.06


def test_published_errors_are_the_vendors_literal_xml():
    """The vendor's example, as published: code 401 and a <data> that is never closed."""
    with TestClient(make_app(variant=["published-errors"])) as client:
        refused = call(client, pincode="nope", format="xml")
        assert refused.status_code == 200
        assert refused.text.endswith(
            "<response><code>401</code><status>Authentication Failed</status>"
            "<data><data/></response>"
        )
        with pytest.raises(ET.ParseError):
            ET.fromstring(refused.content)
        assert error(call(client, pincode="nope")) == (401, "Authentication Failed")
        missing = call(client, pincode=None, format="xml").text
        assert "<code>3</code><status>Authentication Required</status><data><data/>" in missing
        assert xml_body(call(client, perpage=1, format="xml"))[0] == 1  # successes parse
