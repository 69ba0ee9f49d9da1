"""Date selections and the half-open windows they resolve to (see docs/dates.md).

A :class:`DateSelection` is what the user chose, in the words of the connector pages (Default,
a specific date, days back, or a range whose ends are each specific or relative). Resolved for a
"today" in a time zone it becomes a :class:`DateWindow` ``[start, end)`` of whole calendar days in
that zone. The user-facing end date is *included*; the window's end is the next midnight. That
conversion happens here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from leadferry.errors import InvalidWindowError

UTC = dt.UTC


def zone(name: str) -> ZoneInfo:
    """Return the IANA time zone *name*; raise InvalidWindowError naming it when unknown."""
    try:
        if not name or name != name.strip() or name.startswith(("/", ".")):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidWindowError(
            f"unknown time zone {name!r}: use an IANA name such as America/Los_Angeles or UTC"
        ) from None


def parse_day(value: str, field: str) -> dt.date:
    """Parse ``YYYY-MM-DD``; raise InvalidWindowError naming *field* otherwise."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidWindowError(
            f"{field}: {value!r} is not a date (expected YYYY-MM-DD)"
        ) from None


def start_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant of *day* in *tz* (normally midnight; later where midnight is skipped)."""
    naive_midnight = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    # A round trip through UTC moves a midnight that falls in a daylight-saving gap to the
    # first instant that exists, and fixes the offset for the day itself.
    return naive_midnight.astimezone(UTC).astimezone(tz)


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Whole days in one time zone, from ``start`` up to but not including ``end``."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("DateWindow needs time-zone-aware datetimes")
        if self.end <= self.start:
            raise InvalidWindowError(f"the window must end after it starts: {self}")

    @classmethod
    def of_days(cls, first: dt.date, last_excluded: dt.date, tz: ZoneInfo) -> DateWindow:
        """The window of calendar days ``[first, last_excluded)`` in *tz*."""
        return cls(start_of_day(first, tz), start_of_day(last_excluded, tz))

    @property
    def timezone(self) -> ZoneInfo:
        tz = self.start.tzinfo
        if not isinstance(tz, ZoneInfo):
            raise TypeError("DateWindow built outside of dates.py")
        return tz

    @property
    def first_day(self) -> dt.date:
        return self.start.date()

    @property
    def end_day(self) -> dt.date:
        """The first day *not* in the window."""
        return self.end.date()

    def days(self) -> list[dt.date]:
        """Every calendar day in the window, in order."""
        count = (self.end_day - self.first_day).days
        return [self.first_day + dt.timedelta(days=i) for i in range(count)]

    def split(self, max_days: int) -> Iterator[DateWindow]:
        """Consecutive windows of at most *max_days* days that cover this one with no gap."""
        if max_days < 1:
            raise ValueError("max_days must be at least 1")
        day = self.first_day
        while day < self.end_day:
            stop = min(day + dt.timedelta(days=max_days), self.end_day)
            yield DateWindow.of_days(day, stop, self.timezone)
            day = stop

    def as_json(self) -> dict[str, str]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.timezone.key,
        }

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


MAX_DAYS_BACK = 36_600
"""A century: further back than any vendor keeps data, and within the calendar."""


class DateSelection(BaseModel):
    """A date selection as the connector pages offer it; empty means Default (yesterday).

    Exactly one shape is allowed: nothing (Default), ``date``, ``days_back``, or a range made of
    one start (``from_date`` or ``from_days_back``) and one end (``to_date`` or ``to_days_back``).
    The field names are the CLI flags (``--from-days-back``) and the stored JSON keys.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: dt.date | None = None
    days_back: int | None = None
    from_date: dt.date | None = None
    from_days_back: int | None = None
    to_date: dt.date | None = None
    to_days_back: int | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> DateSelection:
        for name in ("days_back", "from_days_back", "to_days_back"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidWindowError(f"{_flag(name)}: {value} is negative; use 0 or more")
            if value is not None and value > MAX_DAYS_BACK:
                raise InvalidWindowError(
                    f"{_flag(name)}: {value} is more than a century back; "
                    f"use at most {MAX_DAYS_BACK:,}"
                )
        pairs = (("from_date", "from_days_back"), ("to_date", "to_days_back"))
        for specific, relative in pairs:
            if getattr(self, specific) is not None and getattr(self, relative) is not None:
                raise InvalidWindowError(
                    f"give either {_flag(specific)} or {_flag(relative)}, not both"
                )
        given = [name for name, value in self if value is not None]
        single = [n for n in given if n in ("date", "days_back")]
        ranged = [n for n in given if n.startswith(("from_", "to_"))]
        if len(single) > 1 or (single and ranged):
            raise InvalidWindowError(
                "choose one date selection: "
                + ", ".join(_flag(n) for n in given)
                + " cannot be combined"
            )
        if ranged:
            has_start = any(n.startswith("from_") for n in ranged)
            has_end = any(n.startswith("to_") for n in ranged)
            if not has_start:
                raise InvalidWindowError("a date range needs a start: --from or --from-days-back")
            if not has_end:
                raise InvalidWindowError("a date range needs an end: --to or --to-days-back")
        return self

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> DateSelection:
        """Build a selection from stored JSON or form fields; raise InvalidWindowError."""
        values = {k: v for k, v in (data or {}).items() if v not in (None, "")}
        for key in ("date", "from_date", "to_date"):
            if isinstance(values.get(key), str):
                values[key] = parse_day(values[key], _flag(key))
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = _flag(str(error["loc"][0])) if error["loc"] else "date selection"
            raise InvalidWindowError(f"{where}: {error['msg']}") from None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def kind(self) -> str:
        if self.date is not None:
            return "date"
        if self.days_back is not None:
            return "days_back"
        if self.from_date is not None or self.from_days_back is not None:
            return "range"
        return "default"

    def describe(self) -> str:
        """A short human description: ``yesterday``, ``2026-11-01``, ``last 7 days``..."""
        if self.kind == "date":
            return str(self.date)
        if self.kind == "days_back":
            return "today" if self.days_back == 0 else f"last {self.days_back} days"
        if self.kind == "range":
            start = self.from_date or f"{self.from_days_back} days back"
            end = self.to_date or f"{self.to_days_back} days back"
            return f"{start} to {end}"
        return "yesterday"

    def resolve(self, timezone: str, today: dt.date) -> DateWindow:
        """Resolve to a window of whole days in *timezone*, for the given local *today*.

        Raises:
            InvalidWindowError: the time zone is unknown, the start is after the end, or the
                window starts in the future.
        """
        tz = zone(timezone)
        start = self.date or self.from_date
        if start is not None and start > today:
            raise InvalidWindowError(f"the window starts in the future ({start}; today is {today})")
        try:
            first, stop = self._days(today)
        except OverflowError:  # a day after 9999-12-31
            raise InvalidWindowError(
                f"{self.describe()}: the calendar ends on {dt.date.max}; choose an earlier day"
            ) from None
        if first > today:
            raise InvalidWindowError(f"the window starts in the future ({first}; today is {today})")
        return DateWindow.of_days(first, stop, tz)

    def window_at(self, timezone: str, now: dt.datetime) -> DateWindow:
        """Resolve for the day it is in *timezone* at the aware instant *now* (see
        :meth:`resolve`, which raises the same errors)."""
        return self.resolve(timezone, today_in(timezone, now))

    def _days(self, today: dt.date) -> tuple[dt.date, dt.date]:
        """The first day of the window and the day after its last."""
        one = dt.timedelta(days=1)
        if self.date is not None:
            first, stop = self.date, self.date + one
        elif self.days_back is not None:
            first = today - dt.timedelta(days=self.days_back)
            stop = today + one if self.days_back == 0 else today
        elif self.kind == "range":
            first = (
                self.from_date
                if self.from_date is not None
                else today - dt.timedelta(days=self.from_days_back or 0)
            )
            last = (
                self.to_date
                if self.to_date is not None
                else today - dt.timedelta(days=self.to_days_back or 0)
            )
            if first > last:
                raise InvalidWindowError(f"the range starts ({first}) after it ends ({last})")
            stop = last + one
        else:
            first, stop = today - one, today
        return first, stop


def today_in(timezone: str, now: dt.datetime) -> dt.date:
    """The calendar date in *timezone* at the aware instant *now*."""
    return now.astimezone(zone(timezone)).date()


def _flag(field: str) -> str:
    names = {"from_date": "from", "to_date": "to"}
    return "--" + names.get(field, field).replace("_", "-")
