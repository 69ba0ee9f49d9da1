"""Date selections resolve exactly as specs/dates.md says."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadferry.dates import DateSelection, DateWindow, start_of_day, zone
from leadferry.errors import InvalidWindowError

TODAY = dt.date(2026, 11, 23)
LA = "America/Los_Angeles"
ZONES = st.sampled_from(
    [
        "UTC",
        LA,
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",  # half-hour daylight-saving shift
        "America/Santiago",  # skips midnight when daylight saving starts
        "Asia/Kathmandu",
        "Pacific/Chatham",
    ]
)
DAYS = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2037, 12, 31))


@pytest.mark.parametrize(
    ("selection", "start", "end"),
    [
        ({}, "2026-11-22T00:00:00-08:00", "2026-11-23T00:00:00-08:00"),
        ({"date": "2026-11-01"}, "2026-11-01T00:00:00-07:00", "2026-11-02T00:00:00-08:00"),
        ({"days_back": 7}, "2026-11-16T00:00:00-08:00", "2026-11-23T00:00:00-08:00"),
        (
            {"from_days_back": 10, "to_days_back": 5},
            "2026-11-13T00:00:00-08:00",
            "2026-11-19T00:00:00-08:00",
        ),
    ],
)
def test_the_specs_example_table(selection, start, end):
    window = DateSelection.parse(selection).resolve(LA, TODAY)
    assert window.start.isoformat() == start
    assert window.end.isoformat() == end


@pytest.mark.parametrize(
    ("selection", "first", "last"),
    [
        ({"days_back": 0}, "2026-11-23", "2026-11-23"),
        ({"days_back": 1}, "2026-11-22", "2026-11-22"),
        ({"from_date": "2026-11-01", "to_date": "2026-11-03"}, "2026-11-01", "2026-11-03"),
        ({"from_date": "2026-11-20", "to_days_back": 0}, "2026-11-20", "2026-11-23"),
        ({"from_days_back": 3, "to_date": "2026-11-21"}, "2026-11-20", "2026-11-21"),
        ({"from_date": "2026-11-05", "to_date": "2026-11-05"}, "2026-11-05", "2026-11-05"),
    ],
)
def test_each_selection_covers_the_days_the_seeds_describe(selection, first, last):
    window = DateSelection.parse(selection).resolve("UTC", TODAY)
    assert window.days()[0].isoformat() == first
    assert window.days()[-1].isoformat() == last


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"days_back": -1}, "--days-back: -1 is negative"),
        ({"from_days_back": -3, "to_days_back": 0}, "--from-days-back: -3 is negative"),
        ({"date": "2026-02-30"}, "--date: '2026-02-30' is not a date"),
        ({"from_date": "2026-13-01", "to_days_back": 1}, "--from: '2026-13-01' is not a date"),
        ({"from_date": "2026-11-10", "to_date": "2026-11-01"}, "starts (2026-11-10) after"),
        (
            {"from_days_back": 2, "to_days_back": 5},
            "starts (2026-11-21) after it ends (2026-11-18)",
        ),
        (
            {"from_days_back": 9, "to_date": "2026-11-20", "to_days_back": 1},
            "give either --to or --to-days-back, not both",
        ),
        ({"date": "2026-11-24"}, "starts in the future (2026-11-24"),
        ({"from_date": "2026-12-01", "to_date": "2026-12-02"}, "starts in the future"),
        ({"date": "2026-11-01", "days_back": 3}, "cannot be combined"),
        ({"from_date": "2026-11-01"}, "needs an end"),
        ({"to_days_back": 1}, "needs a start"),
    ],
)
def test_bad_selections_name_what_is_wrong(selection, message):
    with pytest.raises(InvalidWindowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DateSelection.parse(selection).resolve(LA, TODAY)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "utc "])
def test_unknown_time_zones_are_refused(name):
    with pytest.raises(InvalidWindowError, match="unknown time zone"):
        DateSelection().resolve(name, TODAY)


def elapsed(window: DateWindow) -> dt.timedelta:
    # Subtracting aware datetimes of one zone gives wall-clock time: compare instants in UTC.
    return window.end.astimezone(dt.UTC) - window.start.astimezone(dt.UTC)


def test_calendar_days_not_24_hour_blocks_across_daylight_saving():
    window = DateSelection(date=dt.date(2026, 11, 1)).resolve(LA, TODAY)
    assert elapsed(window) == dt.timedelta(hours=25)
    spring = DateSelection(date=dt.date(2026, 3, 8)).resolve(LA, TODAY)
    assert elapsed(spring) == dt.timedelta(hours=23)


def test_a_skipped_midnight_starts_the_day_at_its_first_instant():
    # Santiago moves its clocks from 00:00 to 01:00 on 2026-09-06.
    window = DateSelection(date=dt.date(2026, 9, 6)).resolve("America/Santiago", TODAY)
    assert window.start.isoformat() == "2026-09-06T01:00:00-03:00"
    assert elapsed(window) == dt.timedelta(hours=23)


def test_selections_round_trip_through_json():
    for data in (
        {},
        {"date": "2026-11-01"},
        {"days_back": 3},
        {"from_days_back": 4, "to_date": "2026-11-20"},
    ):
        assert DateSelection.parse(data).as_json() == data


@given(
    tz=ZONES,
    today=DAYS,
    n=st.integers(min_value=0, max_value=400),
)
def test_days_back_ends_yesterday_or_covers_today(tz, today, n):
    window = DateSelection(days_back=n).resolve(tz, today)
    days = window.days()
    if n == 0:
        assert days == [today]
    else:
        assert len(days) == n
        assert days[-1] == today - dt.timedelta(days=1)


@given(tz=ZONES, today=DAYS, a=st.integers(0, 400), b=st.integers(0, 400))
def test_relative_ranges_include_both_ends(tz, today, a, b):
    selection = DateSelection(from_days_back=max(a, b), to_days_back=min(a, b))
    days = selection.resolve(tz, today).days()
    assert days[0] == today - dt.timedelta(days=max(a, b))
    assert days[-1] == today - dt.timedelta(days=min(a, b))
    assert len(days) == abs(a - b) + 1


@given(tz=ZONES, first=DAYS, length=st.integers(1, 500))
def test_windows_start_and_end_at_the_first_instant_of_a_local_day(tz, first, length):
    last = first + dt.timedelta(days=length - 1)
    selection = DateSelection(from_date=first, to_date=last)
    window = selection.resolve(tz, max(last, first))
    zoneinfo = zone(tz)
    for edge, day in ((window.start, first), (window.end, last + dt.timedelta(days=1))):
        assert edge.tzinfo is zoneinfo
        assert edge == start_of_day(day, zoneinfo)
        # Nothing of that day exists before the edge: the instant a second earlier (in UTC, as
        # wall-clock arithmetic would land in a skipped hour) falls on an earlier day.
        assert (edge.astimezone(dt.UTC) - dt.timedelta(seconds=1)).astimezone(zoneinfo).date() < day
    assert len(window.days()) == length


@given(tz=ZONES, first=DAYS, length=st.integers(1, 400), max_days=st.integers(1, 40))
def test_split_covers_the_window_with_no_gap_and_no_part_too_long(tz, first, length, max_days):
    window = DateWindow.of_days(first, first + dt.timedelta(days=length), zone(tz))
    parts = list(window.split(max_days))
    assert parts[0].start == window.start
    assert parts[-1].end == window.end
    for before, after in zip(parts, parts[1:], strict=False):
        assert before.end == after.start
    assert all(1 <= len(part.days()) <= max_days for part in parts)
    assert sum(len(part.days()) for part in parts) == length


def test_a_window_must_end_after_it_starts():
    start = start_of_day(TODAY, zone("UTC"))
    with pytest.raises(InvalidWindowError):
        DateWindow(start, start)
    with pytest.raises(ValueError, match="aware"):
        DateWindow(start.replace(tzinfo=None), start.replace(tzinfo=None))
