"""The wizard's controls mapped to DateSelection, Schedule, retry and update settings, and back."""

from __future__ import annotations

import datetime as dt

import pytest

from leadferry.connectors import get_connector
from leadferry.connectors.base import DATE_LABELS
from leadferry.dates import DateSelection
from leadferry.schedule import Schedule, next_runs
from leadferry.web.wizard import controls
from leadferry.web.wizard.controls import FormError
from tests.conftest import NOW

LEADS = get_connector("leadexec").report("leads")
AWAITING = get_connector("salesexec").report("leads_awaiting_import_count")
GEO = get_connector("avidtrak").report("geographical_data")

SELECTIONS = [
    ({"duration": "default"}, {}),
    ({"duration": "date", "report_date": "specific", "date": "2026-11-01"}, {"date": "2026-11-01"}),
    ({"duration": "date", "report_date": "relative", "days_back": "7"}, {"days_back": 7}),
    (
        {
            "duration": "range",
            "start_date_type": "specific",
            "from_date": "2026-11-02",
            "end_date_type": "specific",
            "to_date": "2026-11-08",
        },
        {"from_date": "2026-11-02", "to_date": "2026-11-08"},
    ),
    (
        {
            "duration": "range",
            "start_date_type": "relative",
            "from_days_back": "10",
            "end_date_type": "relative",
            "to_days_back": "5",
        },
        {"from_days_back": 10, "to_days_back": 5},
    ),
    (
        {
            "duration": "range",
            "start_date_type": "specific",
            "from_date": "2026-11-02",
            "end_date_type": "relative",
            "to_days_back": "1",
        },
        {"from_date": "2026-11-02", "to_days_back": 1},
    ),
]


@pytest.mark.parametrize(("posted", "selection"), SELECTIONS)
def test_date_controls_map_to_each_selection_and_back(posted, selection):
    assert controls.date_selection_from_form(posted).as_json() == selection
    assert controls.date_controls(DateSelection.parse(selection)) == posted


def test_controls_of_the_choice_not_taken_are_ignored():
    posted = {"duration": "date", "report_date": "relative", "days_back": "3"}
    stale = {"date": "2026-11-01", "from_date": "2026-11-01", "to_days_back": "2"}
    assert controls.date_selection_from_form(posted | stale) == DateSelection(days_back=3)
    assert controls.date_selection_from_form({"duration": "default"} | stale) == DateSelection()


def test_the_seeds_example_covers_ten_days_ago_until_five_days_ago():
    posted = dict(SELECTIONS[4][0])
    window = controls.resolve_window(posted, "America/Los_Angeles", NOW)
    assert (window.first_day, window.end_day) == (dt.date(2026, 11, 13), dt.date(2026, 11, 19))
    assert controls.window_text(window) == (
        "This selection covers 2026-11-13 .. 2026-11-18 in America/Los_Angeles (6 days)."
    )


@pytest.mark.parametrize(
    ("posted", "control"),
    [
        ({"duration": "date", "report_date": "relative", "days_back": "-1"}, "days_back"),
        ({"duration": "date", "report_date": "relative", "days_back": ""}, "days_back"),
        ({"duration": "date", "report_date": "specific", "date": "2026-02-30"}, "date"),
        ({"duration": "range", "from_date": "2026-11-02", "to_date": ""}, "to_date"),
        (
            {
                "duration": "range",
                "start_date_type": "relative",
                "from_days_back": "x",
                "to_date": "2026-11-02",
            },
            "from_days_back",
        ),
        ({"duration": "weekly"}, "duration"),
        ({"duration": "date", "report_date": "maybe"}, "report_date"),
    ],
)
def test_a_bad_date_control_is_named(posted, control):
    with pytest.raises(FormError) as caught:
        controls.date_selection_from_form(posted)
    assert list(caught.value.errors) == [control]


def test_a_range_that_ends_before_it_starts_is_an_error_on_the_end():
    posted = {"duration": "range", "from_date": "2026-11-10", "to_date": "2026-11-02"}
    with pytest.raises(FormError) as caught:
        controls.resolve_window(posted, "UTC", NOW)
    assert list(caught.value.errors) == ["to_date"]
    assert "after it ends" in caught.value.errors["to_date"]


def test_a_window_in_the_future_is_an_error_on_the_start():
    posted = {"duration": "date", "report_date": "specific", "date": "2026-12-01"}
    with pytest.raises(FormError) as caught:
        controls.resolve_window(posted, "UTC", NOW)
    assert list(caught.value.errors) == ["date"]
    later = {"duration": "range", "from_date": "2026-12-01", "to_date": "2026-12-05"}
    with pytest.raises(FormError) as caught:
        controls.resolve_window(later, "UTC", NOW)
    assert list(caught.value.errors) == ["from_date"]


def test_an_unknown_time_zone_is_an_error_on_the_zone():
    with pytest.raises(FormError) as caught:
        controls.resolve_window({"duration": "default"}, "Mars/Olympus", NOW)
    assert list(caught.value.errors) == ["timezone"]


def test_avidtrak_names_the_date_controls_its_own_way():
    labels = get_connector("avidtrak").date_labels
    assert labels["days_back"] == "Date Offset"
    assert (labels["start_date_type"], labels["end_date_type"]) == ("Date From", "Date To")
    assert labels["from_date"] == "Select Specific Date From"
    assert labels["to_days_back"] == "Date To Offset"
    assert get_connector("leadexec").date_labels["from_days_back"] == "Days Back to Start From"
    assert get_connector("salesexec").date_labels == DATE_LABELS


def test_parameters_are_typed_and_checked():
    assert controls.params_from_form(LEADS, {"param_lid": " 271 "}) == {"lid": 271}
    with pytest.raises(FormError) as caught:
        controls.params_from_form(LEADS, {"param_lid": ""})
    assert caught.value.errors == {"param_lid": "Enter the LID."}
    with pytest.raises(FormError) as caught:
        controls.params_from_form(LEADS, {"param_lid": "two"})
    assert "whole number" in caught.value.errors["param_lid"]
    assert controls.params_from_form(AWAITING, {}) == {}  # optional and left empty
    assert controls.param_input_type(LEADS.params[0]) == "number"


BASIC = {"schedule_mode": "basic", "schedule_timezone": "America/Los_Angeles"}


@pytest.mark.parametrize(
    ("posted", "days", "flags"),
    [
        ({"frequency": "manual"}, (), {"manual": True}),
        ({"frequency": "minutes", "every_n": "15"}, (), {"every": "15m"}),
        ({"frequency": "hours", "every_n": "2"}, (), {"every": "2h"}),
        ({"frequency": "days", "every_n": "3"}, (), {"every": "3d"}),
        ({"frequency": "daily", "start_time": "06:00"}, (), {"daily": "06:00"}),
        ({"frequency": "weekdays", "start_time": "07:30"}, (), {"weekdays": "07:30"}),
        (
            {"frequency": "weekly", "start_time": "06:00"},
            ("THU", "MON"),
            {"weekly": "MON,THU@06:00"},
        ),
        (
            {"frequency": "monthly", "start_time": "06:00", "month_day": "31"},
            (),
            {"monthly": "31@06:00"},
        ),
        (
            {
                "frequency": "hours",
                "every_n": "1",
                "active_from": "8",
                "active_to": "18",
                "start_at": "2026-12-01T09:00",
            },
            (),
            {"every": "1h", "active_hours": "8-18", "start_at": "2026-12-01T09:00"},
        ),
    ],
)
def test_basic_controls_build_the_schedule_from_flags_would(posted, days, flags):
    plan = controls.schedule_from_form(BASIC | posted, days)
    assert plan == Schedule.from_flags(tz="America/Los_Angeles", **flags)
    if not flags.get("manual"):
        assert controls.schedule_controls(plan.as_json(), "UTC") == BASIC | posted | (
            {"days": ["MON", "THU"]} if days else {}
        )


@pytest.mark.parametrize(
    ("kind", "expression"),
    [("cron", "0 6 * * 1-5"), ("rule", "FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0")],
)
def test_advanced_controls_take_a_cron_expression_or_a_calendar_rule(kind, expression):
    posted = {
        "schedule_mode": "advanced",
        "advanced_kind": kind,
        kind: expression,
        "schedule_timezone": "UTC",
    }
    plan = controls.schedule_from_form(posted)
    assert plan == Schedule.from_flags(tz="UTC", **{kind: expression})
    assert next_runs(plan, NOW, 5) == next_runs(Schedule.from_flags(**{kind: expression}), NOW, 5)
    assert controls.schedule_controls(plan.as_json(), "UTC") == posted


def test_the_second_and_fourth_sunday_rule_reads_as_words():
    plan = controls.schedule_from_form(
        {
            "schedule_mode": "advanced",
            "advanced_kind": "rule",
            "rule": "FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0",
            "schedule_timezone": "UTC",
        }
    )
    assert plan.describe().startswith("2nd and 4th Sunday of the month at 06:00")


@pytest.mark.parametrize(
    ("posted", "days", "control"),
    [
        ({"frequency": "minutes", "every_n": "0"}, (), "every_n"),
        ({"frequency": "hours", "every_n": ""}, (), "every_n"),
        ({"frequency": "daily", "start_time": "25:00"}, (), "start_time"),
        ({"frequency": "daily", "start_time": ""}, (), "start_time"),
        ({"frequency": "weekly", "start_time": "06:00"}, (), "days"),
        ({"frequency": "monthly", "start_time": "06:00", "month_day": "32"}, (), "month_day"),
        ({"frequency": "daily", "start_time": "06:00", "active_from": "8"}, (), "active_to"),
        ({"frequency": "daily", "start_time": "06:00", "start_at": "soon"}, (), "start_at"),
        ({"frequency": "sometimes"}, (), "frequency"),
        ({"frequency": "manual", "schedule_timezone": "Nowhere/City"}, (), "schedule_timezone"),
    ],
)
def test_a_bad_schedule_control_is_named(posted, days, control):
    with pytest.raises(FormError) as caught:
        controls.schedule_from_form(BASIC | posted, days)
    assert control in caught.value.errors


def test_a_schedule_that_never_runs_inside_its_active_hours_is_an_error_on_them():
    posted = BASIC | {
        "frequency": "daily",
        "start_time": "06:00",
        "active_from": "8",
        "active_to": "18",
    }
    with pytest.raises(FormError) as caught:
        controls.schedule_from_form(posted)
    assert "never runs" in caught.value.errors["active_from"]


@pytest.mark.parametrize(
    ("kind", "text", "control"),
    [("cron", "every morning", "cron"), ("rule", "FREQ=HOURLY", "rule"), ("cron", "", "cron")],
)
def test_a_bad_advanced_schedule_is_an_error_on_its_field(kind, text, control):
    posted = {"schedule_mode": "advanced", "advanced_kind": kind, kind: text}
    with pytest.raises(FormError) as caught:
        controls.schedule_from_form(posted | {"schedule_timezone": "UTC"})
    assert list(caught.value.errors) == [control]
    assert not caught.value.errors[control].startswith("--")


def test_retry_controls_map_to_schedule_changes_and_back():
    assert controls.retry_from_form({"retry": "none", "when_failing": "pause"}) == {
        "no_retry": True,
        "when_failing": "pause",
        "alert_emails": [],
    }
    posted = {
        "retry": "retry",
        "retry_every": "10",
        "retries": "3",
        "when_failing": "keep",
        "alert_emails": "ops@example.com, oncall@example.com",
    }
    assert controls.retry_from_form(posted | {"stale_after": "90"}) == {
        "retry_every": 10,
        "retries": 3,
        "when_failing": "keep",
        "stale_after": 90,
        "alert_emails": ["ops@example.com", "oncall@example.com"],
    }
    emails = ["ops@example.com", "oncall@example.com"]
    assert controls.retry_controls(10, 3, "keep", 90, emails) == posted | {"stale_after": "90"}
    assert controls.retry_controls(None, 0, "pause", None, []) == {
        "retry": "none",
        "when_failing": "pause",
        "alert_emails": "",
    }


def test_the_alert_webhook_is_kept_unless_replaced_or_removed():
    hook = "https://hooks.example.com/x?token=t"
    assert "alert_webhook" not in controls.retry_from_form({"alert_webhook": ""})
    assert controls.retry_from_form({"alert_webhook": hook})["alert_webhook"] == hook
    removed = controls.retry_from_form({"alert_webhook_remove": "on"})
    assert removed["alert_webhook"] == ""


@pytest.mark.parametrize(
    ("posted", "control"),
    [
        ({"retry": "retry", "retry_every": "0", "retries": "3"}, "retry_every"),
        ({"retry": "retry", "retry_every": "5", "retries": ""}, "retries"),
        ({"retry": "none", "when_failing": "panic"}, "when_failing"),
        ({"retry": "none", "stale_after": "0"}, "stale_after"),
    ],
)
def test_a_bad_retry_control_is_named(posted, control):
    with pytest.raises(FormError) as caught:
        controls.retry_from_form(posted)
    assert list(caught.value.errors) == [control]


def test_update_methods_are_those_the_report_supports():
    assert list(controls.update_methods(LEADS)) == ["replace", "append", "merge", "partition"]
    assert "partition" not in controls.update_methods(AWAITING)
    with pytest.raises(FormError) as caught:
        controls.update_from_form(AWAITING, {"update_method": "partition"})
    assert list(caught.value.errors) == ["update_method"]


def test_the_merge_key_defaults_to_the_reports_key():
    assert controls.update_from_form(LEADS, {"update_method": "merge", "merge_key": "uid"}) == {
        "update_method": "merge",
        "merge_key": None,
        "incremental": None,
    }
    chosen = controls.update_from_form(GEO, {"update_method": "merge", "merge_key": "date, state"})
    assert chosen["merge_key"] == "date,state"
    assert controls.update_controls(GEO, "merge", None, None)["merge_key"] == "date,state,city,zip"
    with pytest.raises(FormError) as caught:
        controls.update_from_form(LEADS, {"update_method": "merge", "merge_key": " "})
    assert list(caught.value.errors) == ["merge_key"]


def test_incremental_needs_merge_and_a_change_timestamp():
    posted = {
        "update_method": "merge",
        "merge_key": "uid",
        "incremental": "on",
        "lookback": "30",
        "incremental_start": "2026-11-01",
    }
    chosen = controls.update_from_form(LEADS, posted)
    assert chosen["incremental"] == {"lookback_minutes": 30, "start": "2026-11-01"}
    assert controls.update_controls(LEADS, "merge", None, chosen["incremental"]) == posted
    appended = controls.update_from_form(LEADS, posted | {"update_method": "append"})
    assert appended["incremental"] is None
    assert controls.update_from_form(GEO, posted | {"merge_key": "date"})["incremental"] is None


def test_selections_from_the_controls_resolve_like_the_cli_flags():
    for posted, selection in SELECTIONS:
        mapped = controls.date_selection_from_form(posted)
        assert mapped == DateSelection.parse(selection)
