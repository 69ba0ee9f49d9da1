"""The REST API's datasets: the four panes' settings in one body, validated as the CLI does."""

from __future__ import annotations

import pytest

from tests.web.conftest import api_client

LEADS = {"account": "acme", "report": "leads", "params": {"lid": 271}}


@pytest.fixture
def editor_api(app, store, acme_account):
    with api_client(app, store, "eddie") as client:
        yield client


def create(client, name="leads", **fields):
    return client.post("/api/v1/datasets", json={"name": name, **LEADS, **fields})


def test_a_dataset_with_a_date_range_a_schedule_and_retries(editor_api):
    answer = create(
        editor_api,
        date_selection={"from_date": "2026-11-16", "to_days_back": 1},
        timezone="America/Los_Angeles",
        update_method="merge",
        description="Leads of lid 271",
        owner="ops@acme.example",
        schedule={"kind": "weekly", "days": ["MON", "THU"], "at": "06:30"},
        retry_every=15,
        retries=3,
        when_failing="pause",
        stale_after=1440,
        alert_webhook="https://hooks.acme.example/leadferry?key=abc",
        alert_emails=["ops@acme.example"],
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == "/api/v1/datasets/leads"
    shown = answer.json()
    assert shown["dates"] == "2026-11-16 to 1 days back"
    # The next run, Thursday 06:30 UTC, is Wednesday 11-25 in Los Angeles: it loads up to 11-24.
    assert shown["next_window"] == {
        "start": "2026-11-16T00:00:00-08:00",
        "end": "2026-11-25T00:00:00-08:00",
        "timezone": "America/Los_Angeles",
    }
    assert shown["paused"] is False
    assert shown["schedule"] == "weekly on Mon, Thu at 06:30 UTC"
    assert shown["schedule_settings"] == {
        "kind": "weekly",
        "days": ["MON", "THU"],
        "at": "06:30",
        "timezone": "UTC",
    }
    assert shown["next_runs"] == [
        "2026-11-26T06:30:00+00:00",
        "2026-11-30T06:30:00+00:00",
        "2026-12-03T06:30:00+00:00",
        "2026-12-07T06:30:00+00:00",
        "2026-12-10T06:30:00+00:00",
    ]
    assert shown["retry"] == {"every_minutes": 15, "retries": 3}
    assert shown["when_failing"] == "pause"
    assert shown["stale_after_minutes"] == 1440
    assert shown["alert_webhook"] == "https://hooks.acme.example/leadferry"
    assert (shown["owner"], shown["update_method"]) == ("ops@acme.example", "merge")
    assert editor_api.get("/api/v1/datasets/leads").json() == shown


def test_a_dataset_left_to_its_defaults(editor_api, store):
    shown = create(editor_api).json()
    assert (shown["status"], shown["attention"], shown["last_success"]) == (
        "never",
        ["never ran"],
        None,
    )
    assert shown["dates"] == "yesterday"
    assert shown["schedule"] == "manual"
    assert shown["next_runs"] == []
    assert shown["effective_timezone"] == "America/Los_Angeles"
    assert store.get_dataset("leads").state.next_run_at is None
    listed = editor_api.get("/api/v1/datasets").json()
    assert [d["name"] for d in listed["data"]] == ["leads"]
    assert "next_runs" not in listed["data"][0]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"params": {}}, 422, "report leads needs parameter lid"),
        ({"params": {"lid": "seven"}}, 422, "parameter lid: expected an integer"),
        ({"report": "calls"}, 404, "LeadExec has no report 'calls'"),
        ({"account": "nobody"}, 404, "no account named 'nobody'"),
        ({"date_selection": {"date": "2026-11-01", "days_back": 3}}, 422, "cannot be combined"),
        ({"date_selection": {"from_date": "2026-11-20"}}, 422, "a date range needs an end"),
        ({"date_selection": {"date": "2027-01-01"}}, 422, "the window starts in the future"),
        ({"update_method": "partition", "merge_key": "uid"}, 422, "only applies to the merge"),
        ({"schedule": {"kind": "daily"}}, 422, "a daily schedule needs at"),
        ({"schedule": {"kind": "cron", "cron": "61 * * * *"}}, 422, "is not a cron expression"),
        ({"retry_every": 10}, 422, "together"),
        ({"incremental": {"lookback_minutes": 30}}, 422, "needs the merge update method"),
        ({"name": "Leads!"}, 422, "invalid dataset name 'Leads!'"),
    ],
)
def test_invalid_settings_are_refused_with_what_is_wrong(
    editor_api, store, fields, status, message
):
    answer = create(editor_api, **fields)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]
    assert store.list_datasets() == []


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"timezone": "Mars/Base"}, ["body", "timezone"]),
        ({"schedule": {"kind": "every", "every": "15m", "timezone": "Nowhere"}}, None),
        ({"date_selection": {"days_back": -1}}, ["body", "date_selection", "days_back"]),
        ({"date_selection": {"date": "0001-01-01"}}, ["body", "date_selection", "date"]),
        ({"retries": 10**30, "retry_every": 5}, ["body", "retries"]),
        ({"alert_webhook": "ftp://example.com/x"}, ["body", "alert_webhook"]),
        ({"alert_emails": ["not an address"]}, ["body", "alert_emails", 0]),
        ({"params": {"lid": True}}, None),
        ({"description": "x" * 2001}, ["body", "description"]),
        ({"colour": "blue"}, ["body", "colour"]),
        ({"schedule": {"kind": "every", "every": 15, "start_at": "0001-01-01T00:00+14:00"}}, None),
    ],
)
def test_malformed_fields_are_refused_by_name(editor_api, fields, where):
    answer = create(editor_api, **fields)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["detail"]
    assert isinstance(errors, list)
    if where is not None:
        assert where in [error["loc"] for error in errors]


def test_changing_some_settings_keeps_the_others(editor_api, store):
    create(
        editor_api,
        date_selection={"days_back": 7},
        schedule={"kind": "daily", "at": "05:00", "timezone": "America/Los_Angeles"},
        retry_every=10,
        retries=2,
        description="first",
    )
    answer = editor_api.patch(
        "/api/v1/datasets/leads",
        json={"description": "second", "owner": "ana", "retries": 5},
    )
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert (shown["description"], shown["owner"]) == ("second", "ana")
    assert shown["retry"] == {"every_minutes": 10, "retries": 5}
    assert shown["dates"] == "last 7 days"
    assert shown["schedule"] == "daily at 05:00 America/Los_Angeles"
    assert shown["next_runs"][0] == "2026-11-24T05:00:00-08:00"


def test_null_clears_a_setting(editor_api):
    create(
        editor_api,
        date_selection={"days_back": 7},
        timezone="UTC",
        owner="ana",
        schedule={"kind": "every", "every": "2h"},
        retry_every=10,
        retries=2,
        stale_after=60,
    )
    answer = editor_api.patch(
        "/api/v1/datasets/leads",
        json={
            "date_selection": None,
            "timezone": None,
            "owner": None,
            "schedule": None,
            "retry_every": None,
            "stale_after": None,
        },
    )
    shown = answer.json()
    assert shown["dates"] == "yesterday"
    assert shown["timezone"] is None
    assert shown["effective_timezone"] == "America/Los_Angeles"
    assert shown["owner"] is None
    assert (shown["schedule"], shown["next_runs"], shown["next_run"]) == ("manual", [], None)
    assert shown["retry"] is None
    assert shown["stale_after_minutes"] is None


def test_switching_to_merge_and_incremental(editor_api):
    create(editor_api)
    answer = editor_api.patch(
        "/api/v1/datasets/leads",
        json={
            "update_method": "merge",
            "merge_key": "uid",
            "incremental": {"lookback_minutes": 30, "start": "2026-11-01"},
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["incremental"] == {"lookback_minutes": 30, "start": "2026-11-01"}
    back = editor_api.patch(
        "/api/v1/datasets/leads", json={"update_method": "replace", "incremental": None}
    )
    assert back.status_code == 200, back.text
    assert (back.json()["update_method"], back.json()["merge_key"]) == ("replace", None)


def test_a_refused_change_leaves_the_dataset_as_it_was(editor_api, store):
    create(editor_api, description="kept")
    answer = editor_api.patch(
        "/api/v1/datasets/leads",
        json={"description": "lost", "schedule": {"kind": "monthly", "day": 31}},
    )
    assert answer.status_code == 422
    assert store.get_dataset("leads").description == "kept"
    renamed = editor_api.patch("/api/v1/datasets/leads", json={"name": "other"})
    assert renamed.status_code == 422
    assert editor_api.patch("/api/v1/datasets/nope", json={}).status_code == 404


def test_a_dataset_moves_only_to_an_account_of_its_connector(editor_api, store, acme_account):
    store.create_account("west", "leadexec", {}, {"api_key": "another-key-1234"})
    store.create_account("sales", "salesexec", {"username": "ana"}, {"password": "pw-123456"})
    create(editor_api)
    moved = editor_api.patch("/api/v1/datasets/leads", json={"account": "west"})
    assert moved.json()["account"] == "west"
    refused = editor_api.patch("/api/v1/datasets/leads", json={"account": "sales"})
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "dataset leads reads LeadExec reports: move it to another LeadExec account"
    )
    assert store.get_dataset("leads").account == "west"


def test_a_name_is_taken_once(editor_api):
    assert create(editor_api).status_code == 201
    again = create(editor_api)
    assert again.status_code == 409
    assert again.json() == {"detail": "a dataset named 'leads' already exists"}


def test_removing_a_dataset(editor_api, store):
    create(editor_api)
    assert editor_api.delete("/api/v1/datasets/leads").status_code == 204
    assert store.list_datasets() == []
    assert editor_api.get("/api/v1/datasets/leads").status_code == 404
    assert editor_api.delete("/api/v1/datasets/leads").status_code == 404


def test_a_display_name_is_shown_searched_and_cleared(editor_api):
    assert create(editor_api, display_name="Spring leads").json()["display_name"] == "Spring leads"
    assert create(editor_api, name="other").json()["display_name"] == "other"
    found = editor_api.get("/api/v1/datasets", params={"q": "spring"}).json()
    assert [(d["name"], d["display_name"]) for d in found["data"]] == [("leads", "Spring leads")]
    cleared = editor_api.patch("/api/v1/datasets/leads", json={"display_name": None})
    assert cleared.json()["display_name"] == "leads"
    too_long = editor_api.patch("/api/v1/datasets/leads", json={"display_name": "x" * 201})
    assert too_long.status_code == 422
