"""Schedules: the next runs of every kind, time zones, daylight saving, month ends, active hours,
a delayed first start, validation, and missed slots collapsing into one run."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadferry.errors import ConfigError
from leadferry.schedule import (
    Schedule,
    describe,
    due_slot,
    local,
    next_run,
    next_runs,
    parse_active_hours,
    parse_at,
    parse_every,
    parse_monthly,
    parse_weekly,
)
from tests.conftest import examples

UTC = dt.UTC
LA, LONDON, SYDNEY, KOLKATA = (
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
)
# Monday 2026-11-23, 12:00 in Los Angeles (as in conftest.NOW).
AFTER = dt.datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def runs(schedule: Schedule, after: dt.datetime, count: int = 5) -> list[str]:
    """The next runs as the CLI prints them: ISO 8601 with the zone's offset."""
    return [local(slot, schedule).isoformat() for slot in next_runs(schedule, after, count)]


def clock(schedule: Schedule, after: dt.datetime, count: int = 5) -> list[str]:
    """Just the local wall-clock times, for the readable tables below."""
    return [
        local(slot, schedule).strftime("%m-%d %H:%M") for slot in next_runs(schedule, after, count)
    ]


# -- every kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"manual": True}, []),
        (
            {"every": "15m", "tz": LA},
            [
                "2026-11-23T12:15:00-08:00",
                "2026-11-23T12:30:00-08:00",
                "2026-11-23T12:45:00-08:00",
                "2026-11-23T13:00:00-08:00",
                "2026-11-23T13:15:00-08:00",
            ],
        ),
        (
            {"every": "2h", "tz": LA},
            [
                "2026-11-23T14:00:00-08:00",
                "2026-11-23T16:00:00-08:00",
                "2026-11-23T18:00:00-08:00",
                "2026-11-23T20:00:00-08:00",
                "2026-11-23T22:00:00-08:00",
            ],
        ),
        (
            {"every": "1d", "tz": LA},
            [
                "2026-11-24T00:00:00-08:00",
                "2026-11-25T00:00:00-08:00",
                "2026-11-26T00:00:00-08:00",
                "2026-11-27T00:00:00-08:00",
                "2026-11-28T00:00:00-08:00",
            ],
        ),
        (
            {"every": "3d", "tz": LA, "start_at": "2026-11-25T09:30"},
            [
                "2026-11-25T09:30:00-08:00",
                "2026-11-28T09:30:00-08:00",
                "2026-12-01T09:30:00-08:00",
                "2026-12-04T09:30:00-08:00",
                "2026-12-07T09:30:00-08:00",
            ],
        ),
        (
            {"daily": "06:00", "tz": KOLKATA},
            [
                "2026-11-24T06:00:00+05:30",
                "2026-11-25T06:00:00+05:30",
                "2026-11-26T06:00:00+05:30",
                "2026-11-27T06:00:00+05:30",
                "2026-11-28T06:00:00+05:30",
            ],
        ),
        (
            {"weekdays": "06:00", "tz": LONDON},
            [
                "2026-11-24T06:00:00+00:00",
                "2026-11-25T06:00:00+00:00",
                "2026-11-26T06:00:00+00:00",
                "2026-11-27T06:00:00+00:00",
                "2026-11-30T06:00:00+00:00",
            ],
        ),
        (
            {"weekly": "thu,MON@06:00", "tz": SYDNEY},
            [
                "2026-11-26T06:00:00+11:00",
                "2026-11-30T06:00:00+11:00",
                "2026-12-03T06:00:00+11:00",
                "2026-12-07T06:00:00+11:00",
                "2026-12-10T06:00:00+11:00",
            ],
        ),
        (
            {"monthly": "15@09:00", "tz": LA},
            [
                "2026-12-15T09:00:00-08:00",
                "2027-01-15T09:00:00-08:00",
                "2027-02-15T09:00:00-08:00",
                "2027-03-15T09:00:00-07:00",
                "2027-04-15T09:00:00-07:00",
            ],
        ),
        (
            {"cron": "0 6 * * 1-5", "tz": LA},
            [
                "2026-11-24T06:00:00-08:00",
                "2026-11-25T06:00:00-08:00",
                "2026-11-26T06:00:00-08:00",
                "2026-11-27T06:00:00-08:00",
                "2026-11-30T06:00:00-08:00",
            ],
        ),
        (
            {"rule": "FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0", "tz": LA},
            [
                "2026-12-13T06:00:00-08:00",
                "2026-12-27T06:00:00-08:00",
                "2027-01-10T06:00:00-08:00",
                "2027-01-24T06:00:00-08:00",
                "2027-02-14T06:00:00-08:00",
            ],
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_the_next_five_runs_of_every_kind(flags, expected):
    schedule = Schedule.from_flags(**flags)
    assert runs(schedule, AFTER) == expected
    assert all(slot.tzinfo is UTC for slot in next_runs(schedule, AFTER))
    assert next_run(schedule, AFTER) == (next_runs(schedule, AFTER, 1) or [None])[0]


@pytest.mark.parametrize(
    "flags",
    [
        {"every": "1d", "start_at": "2026-01-15T09:00"},
        {"every": "2d", "start_at": "2026-11-21T09:00"},
        {"daily": "09:00"},
        {"weekdays": "09:00"},
        {"weekly": "MON@09:00"},
        {"monthly": "23@09:00"},
        {"cron": "0 9 23 * *"},
        {"rule": "FREQ=MONTHLY;BYMONTHDAY=23;BYHOUR=9;BYMINUTE=0"},
    ],
)
def test_a_slot_later_today_is_the_next_run(flags):
    schedule = Schedule.from_flags(**flags, tz=LA)
    assert clock(schedule, utc(2026, 11, 23, 16, 59), 1) == ["11-23 09:00"]  # from 08:59


def test_runs_are_strictly_after_the_given_instant():
    daily = Schedule.from_flags(daily="12:00", tz=LA)
    assert clock(daily, AFTER, 1) == ["11-24 12:00"]  # AFTER is 12:00 exactly
    assert clock(daily, AFTER - dt.timedelta(microseconds=1), 1) == ["11-23 12:00"]


def test_the_same_rule_in_different_zones_runs_at_different_instants():
    six = {
        zone: next_run(Schedule.from_flags(daily="06:00", tz=zone), AFTER)
        for zone in (LA, LONDON, SYDNEY, KOLKATA)
    }
    assert six == {
        LA: utc(2026, 11, 24, 14, 0),
        LONDON: utc(2026, 11, 24, 6, 0),
        SYDNEY: utc(2026, 11, 24, 19, 0),
        KOLKATA: utc(2026, 11, 24, 0, 30),
    }


def test_every_with_a_start_time_shifts_the_grid():
    assert clock(Schedule.parse({"kind": "every", "every": "2h", "at": "01:00"}), AFTER, 3) == [
        "11-23 21:00",
        "11-23 23:00",
        "11-24 01:00",
    ]


def test_an_interval_that_does_not_divide_the_day_restarts_at_midnight():
    seven = Schedule.from_flags(every="7h", tz=KOLKATA)
    assert clock(seven, utc(2026, 11, 23, 0, 0), 5) == [
        "11-23 07:00",
        "11-23 14:00",
        "11-23 21:00",
        "11-24 00:00",
        "11-24 07:00",
    ]


# -- daylight saving ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "after", "expected"),
    [
        # Spring forward: 02:00 becomes 03:00, so 02:30 runs once, when the clocks jump.
        (
            LA,
            "02:30",
            utc(2026, 3, 7, 12),
            ["2026-03-08T03:00:00-07:00", "2026-03-09T02:30:00-07:00"],
        ),
        (
            LONDON,
            "01:30",
            utc(2026, 3, 28, 12),
            ["2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"],
        ),
        (
            SYDNEY,
            "02:30",
            utc(2026, 10, 3),
            ["2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"],
        ),
        # Fall back: the hour repeats, and 01:30 runs once, the first time.
        (
            LA,
            "01:30",
            utc(2026, 10, 31, 12),
            ["2026-11-01T01:30:00-07:00", "2026-11-02T01:30:00-08:00"],
        ),
        (
            LONDON,
            "01:30",
            utc(2026, 10, 24, 12),
            ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"],
        ),
        (
            SYDNEY,
            "02:30",
            utc(2026, 4, 4),
            ["2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"],
        ),
    ],
)
def test_daily_runs_once_on_daylight_saving_days(zone, at, after, expected):
    assert runs(Schedule.from_flags(daily=at, tz=zone), after, 2) == expected
    minute, hour = int(at[3:]), int(at[:2])
    assert runs(Schedule.from_flags(cron=f"{minute} {hour} * * *", tz=zone), after, 2) == expected


def test_cron_follows_the_wall_clock_across_daylight_saving():
    half_hourly = Schedule.from_flags(cron="*/30 * * * *", tz=LA)
    assert clock(half_hourly, utc(2026, 3, 8, 9, 0), 4) == [
        "03-08 01:30",
        "03-08 03:00",
        "03-08 03:30",
        "03-08 04:00",
    ]
    assert runs(half_hourly, utc(2026, 11, 1, 8, 0), 3) == [
        "2026-11-01T01:30:00-07:00",
        "2026-11-01T02:00:00-08:00",
        "2026-11-01T02:30:00-08:00",
    ]


@pytest.mark.parametrize("zone", [LA, LONDON, SYDNEY])
@pytest.mark.parametrize("every", ["15m", "1h"])
@pytest.mark.parametrize("month", [3, 4, 10, 11])
def test_every_n_minutes_is_elapsed_time_across_daylight_saving(zone, every, month):
    schedule = Schedule.from_flags(every=every, tz=zone)
    slots = next_runs(schedule, utc(2026, month, 1), 24 * 40 * 4)
    gaps = {later - earlier for earlier, later in zip(slots, slots[1:], strict=False)}
    assert gaps == {dt.timedelta(minutes=parse_every(every))}


def test_every_2h_shifts_after_the_change_and_is_back_on_even_hours_the_next_day():
    two_hourly = Schedule.from_flags(every="2h", tz=LA)
    assert clock(two_hourly, utc(2026, 3, 8, 8, 0), 4) == [
        "03-08 03:00",
        "03-08 05:00",
        "03-08 07:00",
        "03-08 09:00",
    ]
    assert clock(two_hourly, utc(2026, 3, 9, 5, 0), 2) == ["03-08 23:00", "03-09 00:00"]


def test_a_day_without_daylight_saving_keeps_its_offset():
    assert runs(Schedule.from_flags(every="1d", tz=KOLKATA), utc(2026, 3, 7), 2) == [
        "2026-03-08T00:00:00+05:30",
        "2026-03-09T00:00:00+05:30",
    ]


# -- month ends ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "year", "expected"),
    [
        (31, 2027, ["01-31", "02-28", "03-31", "04-30", "05-31"]),
        (31, 2028, ["01-31", "02-29", "03-31", "04-30", "05-31"]),
        (30, 2027, ["01-30", "02-28", "03-30", "04-30", "05-30"]),
        (30, 2028, ["01-30", "02-29", "03-30", "04-30", "05-30"]),
        (29, 2027, ["01-29", "02-28", "03-29", "04-29", "05-29"]),
        (29, 2028, ["01-29", "02-29", "03-29", "04-29", "05-29"]),
        (28, 2028, ["01-28", "02-28", "03-28", "04-28", "05-28"]),
    ],
)
def test_a_monthly_day_past_the_months_end_runs_on_its_last_day(day, year, expected):
    schedule = Schedule.from_flags(monthly=f"{day}@06:00", tz=LONDON)
    after = dt.datetime(year, 1, 1, tzinfo=UTC)
    assert clock(schedule, after) == [f"{date} 06:00" for date in expected]


def test_a_monthly_schedule_found_from_mid_month():
    schedule = Schedule.from_flags(monthly="31@06:00", tz=LA)
    assert clock(schedule, utc(2027, 4, 15), 2) == ["04-30 06:00", "05-31 06:00"]
    assert clock(schedule, utc(2027, 2, 28, 15), 1) == ["03-31 06:00"]


# -- active hours and a delayed first start -----------------------------------------------------


def test_active_hours_exclude_the_end_hour():
    hourly = Schedule.from_flags(every="1h", tz=LA, active_hours="8-18")
    assert [t[6:] for t in clock(hourly, utc(2026, 11, 23, 8), 11)] == [
        "08:00",
        "09:00",
        "10:00",
        "11:00",
        "12:00",
        "13:00",
        "14:00",
        "15:00",
        "16:00",
        "17:00",
        "08:00",
    ]
    quarterly = Schedule.from_flags(every="15m", tz=LA, active_hours="8-18")
    assert clock(quarterly, utc(2026, 11, 24, 1, 30), 2) == ["11-23 17:45", "11-24 08:00"]


def test_active_hours_wrap_past_midnight():
    nightly = Schedule.from_flags(every="1h", tz=SYDNEY, active_hours="22-6")
    assert [t[6:] for t in clock(nightly, utc(2026, 11, 23, 9), 9)] == [
        "22:00",
        "23:00",
        "00:00",
        "01:00",
        "02:00",
        "03:00",
        "04:00",
        "05:00",
        "22:00",
    ]


def test_a_cron_schedule_with_active_hours():
    schedule = Schedule.from_flags(cron="*/20 * * * 1-5", tz=LONDON, active_hours="9-10")
    assert clock(schedule, utc(2026, 11, 27, 9, 30), 4) == [
        "11-27 09:40",
        "11-30 09:00",
        "11-30 09:20",
        "11-30 09:40",
    ]


def test_no_slot_runs_before_a_delayed_first_start():
    quarterly = Schedule.from_flags(every="15m", tz=LA, start_at="2026-12-01T09:10")
    assert clock(quarterly, AFTER, 3) == ["12-01 09:10", "12-01 09:25", "12-01 09:40"]
    assert clock(quarterly, utc(2026, 12, 2, 8), 1) == ["12-02 00:10"]
    daily = Schedule.from_flags(daily="06:00", tz=LA, start_at="2026-12-03T06:00:00-08:00")
    assert clock(daily, AFTER, 2) == ["12-03 06:00", "12-04 06:00"]
    weekly = Schedule.from_flags(weekly="MON@06:00", tz=LA, start_at="2026-12-01")
    assert clock(weekly, AFTER, 1) == ["12-07 06:00"]


def test_a_rule_counts_its_interval_from_the_start():
    every_other = Schedule.from_flags(
        rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=7;BYMINUTE=0", tz=LA, start_at="2026-11-30"
    )
    assert clock(every_other, AFTER, 3) == ["11-30 07:00", "12-14 07:00", "12-28 07:00"]


# -- describing and storing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        ({"manual": True}, "manual: runs only when started"),
        (
            {"every": "15m", "tz": LA, "active_hours": "8-18"},
            "every 15 minutes, 08:00-18:00 America/Los_Angeles",
        ),
        ({"every": "1h"}, "every hour UTC"),
        (
            {"every": "90m", "start_at": "2026-12-01T09:10Z"},
            "every 90 minutes from 00:10 each day, not before 2026-12-01 09:10 UTC",
        ),
        ({"every": "2d"}, "every 2 days at 00:00 UTC"),
        ({"weekdays": "07:15", "tz": KOLKATA}, "every weekday (Mon-Fri) at 07:15 Asia/Kolkata"),
        ({"weekly": "THU,MON@06:00"}, "weekly on Mon, Thu at 06:00 UTC"),
        (
            {"monthly": "31@06:00"},
            "monthly on day 31 at 06:00 (the last day in shorter months) UTC",
        ),
        ({"cron": "0  6 * * 1-5"}, "cron 0 6 * * 1-5 UTC"),
        (
            {"rule": "RRULE:FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0"},
            "2nd and 4th Sunday of the month at 06:00 UTC",
        ),
        (
            {"rule": "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=30"},
            "last Friday of the month at 17:30 UTC",
        ),
        (
            {"rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"},
            "rule FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29 UTC",
        ),
    ],
)
def test_describe(flags, text):
    schedule = Schedule.from_flags(**flags)
    assert describe(schedule) == schedule.describe() == text


@pytest.mark.parametrize(
    "flags",
    [
        {"manual": True},
        {"every": "15m", "tz": LA, "active_hours": "22-6", "start_at": "2026-12-01T09:10"},
        {"every": "2d"},
        {"daily": "06:00", "tz": SYDNEY},
        {"weekdays": "06:00"},
        {"weekly": "MON,THU@06:00", "tz": KOLKATA},
        {"monthly": "31@06:00", "tz": LONDON},
        {"cron": "*/5 8-17 * * 1-5", "tz": LA},
        {"rule": "FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0", "start_at": "2026-01-01"},
    ],
)
def test_a_schedule_survives_a_round_trip_through_json(flags):
    schedule = Schedule.from_flags(**flags)
    stored = schedule.as_json()
    assert Schedule.parse(stored) == schedule
    assert runs(Schedule.parse(stored), AFTER) == runs(schedule, AFTER)


def test_the_stored_form_is_plain_json():
    schedule = Schedule.from_flags(weekly="MON,THU@06:00", tz=LA, start_at="2026-12-01T09:10")
    assert schedule.as_json() == {
        "kind": "weekly",
        "at": "06:00",
        "days": ["MON", "THU"],
        "timezone": LA,
        "start_at": "2026-12-01T17:10:00Z",
    }
    assert Schedule.parse(None) == Schedule() == Schedule.from_flags(manual=True)
    assert Schedule.parse({"kind": "every", "every": 15}).every == 15


# -- refusing nonsense ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"every": "0h"}, "--every: '0h' is too short"),
        ({"every": "0m"}, "--every: '0m' is too short"),
        ({"every": "15"}, "--every: '15' is not an interval"),
        ({"every": "-5m"}, "--every: '-5m' is not an interval"),
        ({"every": "36h"}, "--every: '36h' is over a day but not whole days"),
        ({"cron": "61 * * * *"}, "--cron: '61 * * * *' is not a cron expression"),
        ({"cron": "0 6 * *"}, "--cron: '0 6 * *' is not a cron expression"),
        ({"cron": "0 0 6 * * *"}, "is not a cron expression"),
        ({"cron": "every day"}, "is not a cron expression"),
        ({"cron": "0 0 30 2 *"}, "this schedule never runs: cron 0 0 30 2 *"),
        ({"daily": "25:00"}, "--daily: '25:00' is not a time"),
        ({"weekdays": "6am"}, "--weekdays: '6am' is not a time"),
        ({"weekly": "MON"}, "--weekly: 'MON' needs days and a time"),
        ({"weekly": "FUN,MON@06:00"}, "--weekly: FUN given; use days from MON,TUE"),
        ({"weekly": "@06:00"}, "--weekly: no days given"),
        ({"monthly": "32@06:00"}, "--monthly: '32@06:00' needs a day 1-31"),
        ({"monthly": "0@06:00"}, "--monthly: '0@06:00' needs a day 1-31"),
        (
            {"daily": "06:00", "tz": "Mars/Olympus_Mons"},
            "--tz: unknown time zone 'Mars/Olympus_Mons'",
        ),
        ({"daily": "06:00", "tz": "../etc/passwd"}, "--tz: unknown time zone"),
        ({"daily": "06:00", "active_hours": "8-8"}, "--active-hours: '8-8'"),
        ({"daily": "06:00", "active_hours": "25-3"}, "--active-hours: '25-3'"),
        ({"daily": "06:00", "active_hours": "8"}, "--active-hours: '8'"),
        ({"daily": "06:00", "active_hours": "8-18"}, "never runs inside --active-hours 8-18"),
        (
            {"daily": "06:00", "start_at": "next tuesday"},
            "--start-at: 'next tuesday' is not a date-time",
        ),
        (
            {"rule": "FREQ=HOURLY"},
            "--rule: 'FREQ=HOURLY' is not usable: FREQ must be DAILY or longer",
        ),
        ({"rule": "FREQ=DAILY;COUNT=3"}, "COUNT is not supported"),
        ({"rule": "BYDAY=MO"}, "FREQ must be DAILY or longer"),
        ({"rule": "FREQ=DAILY;BYHOUR=25"}, "--rule: 'FREQ=DAILY;BYHOUR=25' is not usable: hour"),
        ({"rule": "FREQ=DAILY;UNTIL=20300101T000000Z"}, "give UNTIL in local time"),
        ({"rule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"}, "give only the RRULE part"),
        ({}, "choose exactly one of --manual, --every"),
        ({"daily": "06:00", "every": "1h"}, "(given: --every, --daily)"),
    ],
)
def test_nonsense_is_refused_with_a_one_line_message_naming_the_flag(flags, message):
    with pytest.raises(ConfigError) as refused:
        Schedule.from_flags(**flags)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "weekly", "at": "06:00"}, "a weekly schedule needs days"),
        ({"kind": "daily", "at": "06:00", "cron": "0 6 * * *"}, "cron does not apply to a daily"),
        ({"kind": "manual", "active_hours": [8, 18]}, "active_hours does not apply to a manual"),
        ({"kind": "hourly"}, "schedule kind: Input should be"),
        ({"kind": "daily", "at": "06:00", "colour": "red"}, "schedule colour: Extra inputs"),
        ({"kind": "monthly", "day": 0, "at": "06:00"}, "--monthly: day 0 is not 1-31"),
        ({"kind": "every", "every": 0}, "--every: 0 is too short"),
    ],
)
def test_stored_nonsense_is_refused(data, message):
    with pytest.raises(ConfigError) as refused:
        Schedule.parse(data)
    assert message in str(refused.value)


def test_the_flag_parsers():
    assert [parse_every(v) for v in ("1m", "15m", "2h", "1d", "24h", "3D", 45)] == [
        1,
        15,
        120,
        1440,
        1440,
        4320,
        45,
    ]
    assert parse_at("6:05") == dt.time(6, 5)
    assert parse_weekly("sun, fri ,SUN@23:59") == (("FRI", "SUN"), dt.time(23, 59))
    assert parse_monthly("31@00:00") == (31, dt.time(0, 0))
    assert parse_active_hours("22-6") == (22, 6)
    assert parse_active_hours(" 0 - 24 ") == (0, 24)


def test_naive_instants_are_a_programming_error():
    with pytest.raises(ValueError, match="aware"):
        next_runs(Schedule.from_flags(every="1h"), dt.datetime(2026, 1, 1))  # noqa: DTZ001


# -- missed slots ---------------------------------------------------------------------------------


def test_slots_missed_while_down_collapse_into_the_latest():
    quarterly = Schedule.from_flags(every="15m", tz=LA)
    last = utc(2026, 11, 23, 9, 0)
    back = utc(2026, 11, 23, 12, 7)  # 12 slots were missed
    assert due_slot(quarterly, last, back) == utc(2026, 11, 23, 12, 0)
    assert due_slot(quarterly, utc(2026, 11, 23, 12, 0), back) is None
    assert quarterly.is_due(last, back)
    assert not quarterly.is_due(utc(2026, 11, 23, 12, 0), back)
    assert due_slot(quarterly, utc(2026, 11, 23, 12, 0), utc(2026, 11, 23, 12, 15)) == utc(
        2026, 11, 23, 12, 15
    )


def test_a_week_down_runs_a_daily_schedule_once():
    daily = Schedule.from_flags(daily="06:00", tz=SYDNEY)
    last = utc(2026, 11, 10, 19, 0)
    assert due_slot(daily, last, utc(2026, 11, 18, 0, 0)) == utc(2026, 11, 17, 19, 0)


def test_a_schedule_that_never_ran_counts_from_since_or_start_at():
    hourly = Schedule.from_flags(every="1h", tz=LONDON)
    assert due_slot(hourly, None, utc(2026, 11, 23, 12, 30)) == utc(2026, 11, 23, 12, 0)
    assert (
        due_slot(hourly, None, utc(2026, 11, 23, 12, 30), since=utc(2026, 11, 23, 12, 10)) is None
    )
    assert due_slot(hourly, None, utc(2026, 11, 23, 12, 30), since=utc(2026, 11, 23, 12)) == utc(
        2026, 11, 23, 12
    )
    later = Schedule.from_flags(every="1h", tz=LONDON, start_at="2026-11-23T12:30")
    assert due_slot(later, None, utc(2026, 11, 23, 12, 29)) is None
    assert due_slot(later, None, utc(2026, 11, 23, 12, 30)) == utc(2026, 11, 23, 12, 30)
    assert due_slot(later, None, utc(2026, 11, 23, 14, 10)) == utc(2026, 11, 23, 13, 30)


def test_due_slot_skips_inactive_hours_and_manual():
    schedule = Schedule.from_flags(cron="*/10 * * * *", tz=LA, active_hours="8-18")
    morning = utc(2026, 11, 24, 15, 5)  # 07:05 in Los Angeles
    assert local(due_slot(schedule, None, morning), schedule).isoformat() == (
        "2026-11-23T17:50:00-08:00"
    )
    assert due_slot(schedule, utc(2026, 11, 24, 1, 50), morning) is None
    assert due_slot(Schedule(), None, morning) is None


def test_due_slot_in_the_repeated_hour_of_a_fall_back():
    half_hourly = Schedule.from_flags(cron="*/30 * * * *", tz=LA)
    first_0130 = utc(2026, 11, 1, 8, 30)  # 01:30 PDT
    second_0120 = utc(2026, 11, 1, 9, 20)  # 01:20 PST, the hour again
    assert due_slot(half_hourly, None, second_0120) == first_0130
    assert due_slot(half_hourly, first_0130, second_0120) is None  # 01:30 does not run twice
    daily = Schedule.from_flags(daily="01:30", tz=LA)
    assert due_slot(daily, first_0130, utc(2026, 11, 1, 9, 45)) is None


# -- properties -----------------------------------------------------------------------------------

ZONES = [LA, LONDON, SYDNEY, KOLKATA, "UTC", "Australia/Lord_Howe"]
# Daylight-saving changes in 2026 (UTC): near them is where the arithmetic goes wrong.
CHANGES = [
    utc(2026, 3, 8, 10),
    utc(2026, 11, 1, 9),
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 4, 4, 16),
    utc(2026, 10, 3, 16),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15, 30),
]
INSTANTS = st.one_of(
    st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2031, 12, 31), timezones=st.just(UTC)),  # noqa: DTZ001
    st.builds(
        lambda change, minutes: change + dt.timedelta(minutes=minutes),
        st.sampled_from(CHANGES),
        st.integers(-26 * 60, 26 * 60),
    ),
)
TIMES = st.builds(
    lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 59])
)
KIND_FLAGS = st.one_of(
    st.builds(lambda n, unit: {"every": f"{n}{unit}"}, st.integers(1, 12), st.sampled_from("mh")),
    st.builds(lambda n: {"every": f"{n}m"}, st.sampled_from([5, 7, 15, 45, 90, 110])),
    st.builds(lambda n: {"every": f"{n}d"}, st.integers(1, 3)),
    st.builds(lambda at: {"daily": at}, TIMES),
    st.builds(lambda at: {"weekdays": at}, TIMES),
    st.builds(
        lambda days, at: {"weekly": f"{','.join(days)}@{at}"},
        st.lists(st.sampled_from(["MON", "WED", "SAT", "SUN"]), min_size=1, max_size=3),
        TIMES,
    ),
    st.builds(lambda day, at: {"monthly": f"{day}@{at}"}, st.integers(1, 31), TIMES),
    st.builds(
        lambda expr: {"cron": expr},
        st.sampled_from(
            [
                "*/30 * * * *",
                "30 2 * * *",
                "0 1-3 * * *",
                "15 */3 * * 1-5",
                "0 6 L * *",
                "0 6 * * SUN#2",
            ]
        ),
    ),
    st.builds(
        lambda rule: {"rule": rule},
        st.sampled_from(
            [
                "FREQ=MONTHLY;BYDAY=2SU,4SU;BYHOUR=6;BYMINUTE=0",
                "FREQ=DAILY;BYHOUR=1,2,3;BYMINUTE=30",
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,FR;BYHOUR=2;BYMINUTE=15",
            ]
        ),
    ),
)
HOURS = st.one_of(
    st.none(), st.tuples(st.integers(0, 23), st.integers(0, 24)).map("{0[0]}-{0[1]}".format)
)


def build(flags, zone, hours, start_at):
    try:
        return Schedule.from_flags(**flags, tz=zone, active_hours=hours, start_at=start_at)
    except ConfigError:
        return None  # e.g. hours that never include a daily time, or "8-8"


SCHEDULES = st.builds(
    build, KIND_FLAGS, st.sampled_from(ZONES), HOURS, st.one_of(st.none(), INSTANTS)
).filter(lambda schedule: schedule is not None)
PROPERTIES = settings(
    max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTIES
@given(schedule=SCHEDULES, after=INSTANTS)
def test_next_runs_increase_and_respect_after_start_and_active_hours(schedule, after):
    slots = next_runs(schedule, after, 8)
    assert len(slots) == 8
    assert all(earlier < later for earlier, later in zip(slots, slots[1:], strict=False))
    assert slots[0] > after
    if schedule.start_at:
        assert slots[0] >= schedule.start_at
    if schedule.active_hours:
        start, end = schedule.active_hours
        for slot in slots:
            hour = local(slot, schedule).hour
            assert (start <= hour < end) if start < end else (hour >= start or hour < end)
    # Asking again from any slot, or from just before it, gives the same slots: the set of
    # slots does not depend on where the search starts.
    assert [next_run(schedule, slot) for slot in slots[:-1]] == slots[1:]
    tick = dt.timedelta(microseconds=1)
    assert [next_run(schedule, slot - tick) for slot in slots] == slots


@PROPERTIES
@given(
    schedule=SCHEDULES,
    last=INSTANTS,
    down=st.timedeltas(dt.timedelta(0), dt.timedelta(days=3)),
)
def test_due_slot_is_the_latest_slot_since_the_last_one(schedule, last, down):
    now, latest, cursor = last + down, None, last
    while (batch := next_runs(schedule, cursor, 50)) and batch[0] <= now:
        latest = max(slot for slot in batch if slot <= now)
        cursor = batch[-1]
    assert due_slot(schedule, last, now) == latest
    assert schedule.is_due(last, now) is (latest is not None)
    since = last + dt.timedelta(microseconds=1)
    assert due_slot(schedule, None, now, since=since) == latest
