"""Dataset schedules (the Scheduling pane, ``leadferry datasets schedule``) and when they run.

A :class:`Schedule` is what the user chose (manual, every N minutes, hours or days, daily, every
weekday, weekly on chosen days, monthly on a chosen day, cron, or an RFC 5545 rule) in one IANA
zone, with optional active hours and a delayed first start. It is stored as JSON in its zone's
wall-clock terms (a daily 06:00 in Los Angeles is no fixed UTC time); every instant (``start_at``,
each slot) is aware UTC. Nothing here reads the clock: callers pass ``after`` or ``now``.

- **Wall-clock kinds** (daily, weekdays, weekly, monthly, every N days, cron, rule) are local
  times from dateutil's rrule or croniter. One that a spring-forward skips (02:30 in Los Angeles
  on 2026-03-08) runs once at the first instant after the gap (03:00); one that a fall-back
  repeats (01:30 on 2026-11-01) runs once, the first time. So ``*/30 * * * *`` runs 01:30,
  03:00, 03:30 that March night, and skips the repeated 01:00-01:59 that November night.
- **Every N minutes or hours** (under a day) is elapsed time on a grid that restarts at each
  local midnight: ``midnight + phase + k * N``, where the phase is the start time ``at``, else
  ``start_at``'s time of day, else 00:00, modulo N. So 15m runs at :00, :15, :30, :45 local and
  2h at 00:00, 02:00 ..., and 1h or 15m keep running every 60 or 15 real minutes through
  daylight-saving changes. On a 23- or 25-hour day the local times after the change shift (2h
  on 2026-03-08 in Los Angeles: 00:00, 03:00, 05:00 ...); an N that does not divide 24 hours
  leaves a shorter gap before midnight (7h: 00:00, 07:00, 14:00, 21:00).
- **Every N days** runs at the start time (as above) every N calendar days from ``start_at``'s
  local date, else from 2001-01-01. **Monthly on day D** runs on the last day of shorter months.
- **Rules** count from ``start_at`` (local), else from 2001-01-01 00:00 local (a Monday, the 1st),
  which matters only for INTERVAL and for parts the rule leaves out. FREQ must be DAILY or longer
  (else use --every or --cron); COUNT and DTSTART are refused (use UNTIL and --start-at).
- **Active hours** ``(start, end)`` keep slots whose local hour ``h`` has ``start <= h < end``;
  ``(22, 6)`` wraps past midnight. **start_at** drops every slot before it.
- A schedule with no slot within ten years of the last (or of ``start_at``, or of 2001), such
  as daily 06:00 with active hours 8-18 or ``0 0 30 2 *``, is refused when built.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from itertools import islice, takewhile
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from dateutil import rrule
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from leadferry.dates import start_of_day, zone
from leadferry.errors import ConfigError, InvalidWindowError

UTC = dt.UTC
Kind = Literal["manual", "every", "daily", "weekdays", "weekly", "monthly", "cron", "rule"]
KINDS: tuple[str, ...] = get_args(Kind)
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
DAY_MINUTES = 1440
EPOCH = dt.datetime(2001, 1, 1)  # noqa: DTZ001 (a local wall-clock time: what rules count from)
HORIZON = dt.timedelta(days=3660)  # stop looking for the next slot this far past the last one
# The fields each kind needs; all but manual may also have OPTIONS, and every may have `at`.
_FIELDS = ("", "every", "at", "at", "days at", "day at", "cron", "rule")
NEEDS = {kind: tuple(names.split()) for kind, names in zip(KINDS, _FIELDS, strict=True)}
OPTIONS = ("active_hours", "start_at")
_ONE_DAY = dt.timedelta(days=1)
_RRULE_DAYS = dict(zip(WEEKDAYS, rrule.weekdays, strict=True))
_DURATION = re.compile(r"(\d+)\s*([mhd])", re.IGNORECASE)
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_HOURS = re.compile(r"(\d{1,2})\s*-\s*(\d{1,2})")


def parse_every(value: str | int, flag: str = "--every") -> int:
    """Parse an interval such as ``15m``, ``2h`` or ``1d`` (an int is minutes) to minutes.

    Raises:
        ConfigError: not an interval, under a minute, or over a day but not whole days.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    elif match := _DURATION.fullmatch(str(value).strip()):
        minutes = int(match[1]) * {"m": 1, "h": 60, "d": DAY_MINUTES}[match[2].lower()]
    else:
        raise ConfigError(f"{flag}: {value!r} is not an interval (expected e.g. 15m, 2h, 1d)")
    if minutes < 1:
        raise ConfigError(f"{flag}: {value!r} is too short; the shortest interval is 1m")
    if minutes > DAY_MINUTES and minutes % DAY_MINUTES:
        raise ConfigError(f"{flag}: {value!r} is over a day but not whole days; use e.g. 2d")
    return minutes


def parse_at(value: str | dt.time, flag: str = "--at") -> dt.time:
    """Parse a local start time ``HH:MM`` (00:00 to 23:59); raise ConfigError naming *flag*."""
    if isinstance(value, dt.time) and not (value.second or value.microsecond or value.tzinfo):
        return value
    match = _TIME.fullmatch(str(value).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ConfigError(f"{flag}: {value!r} is not a time (expected HH:MM, 00:00 to 23:59)")
    return dt.time(int(match[1]), int(match[2]))


def parse_days(value: str | list[str] | tuple[str, ...], flag: str = "--weekly") -> tuple[str, ...]:
    """Parse weekdays (``MON,THU`` or a list of names) into a tuple in week order."""
    days = {
        str(day).strip().upper() for day in (value.split(",") if isinstance(value, str) else value)
    }
    if not days or not days <= set(WEEKDAYS):
        unknown = ", ".join(sorted(days - set(WEEKDAYS))) or "no days"
        raise ConfigError(f"{flag}: {unknown} given; use days from {','.join(WEEKDAYS)}")
    return tuple(day for day in WEEKDAYS if day in days)


def parse_weekly(value: str, flag: str = "--weekly") -> tuple[tuple[str, ...], dt.time]:
    """Parse ``MON,THU@06:00`` into the days and the local time."""
    days, sep, at = value.partition("@")
    if not sep:
        raise ConfigError(f"{flag}: {value!r} needs days and a time, e.g. MON,THU@06:00")
    return parse_days(days, flag), parse_at(at, flag)


def parse_monthly(value: str, flag: str = "--monthly") -> tuple[int, dt.time]:
    """Parse ``31@06:00`` into the day of the month (1-31) and the local time."""
    day, sep, at = value.partition("@")
    if not sep or not day.strip().isdigit() or not 1 <= int(day) <= 31:
        raise ConfigError(f"{flag}: {value!r} needs a day 1-31 and a time, e.g. 15@06:00")
    return int(day), parse_at(at, flag)


def parse_active_hours(value: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Parse ``8-18`` (08:00 up to 17:59) or ``22-6`` (past midnight): start 0-23, end 0-24."""
    match = _HOURS.fullmatch(value.strip()) if isinstance(value, str) else None
    hours = match.groups() if match else () if isinstance(value, str) else value
    start, end = (int(hours[0]), int(hours[1])) if len(hours) == 2 else (-1, -1)
    if not (0 <= start <= 23 and 0 <= end <= 24 and start != end):
        raise ConfigError(f"--active-hours: {value!r} is not two different hours, e.g. 8-18")
    return start, end


def parse_start_at(value: str | dt.datetime, timezone: str = "UTC") -> dt.datetime:
    """Parse an ISO 8601 date-time (without an offset: local time in *timezone*) to UTC."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(
                f"--start-at: {value!r} is not a date-time (expected e.g. 2026-12-01T09:00)"
            ) from None
    if value.tzinfo is None:
        return _instant(value.replace(microsecond=0), _zone(timezone))
    return value.astimezone(UTC).replace(microsecond=0)


def _zone(name: str) -> ZoneInfo:
    try:
        return zone(name)
    except InvalidWindowError as exc:
        raise ConfigError(f"--tz: {exc}") from None


def _parsed(parse: Callable[[Any], Any]) -> BeforeValidator:
    """Parse a field from its text form (as the flags and the stored JSON give it)."""
    return BeforeValidator(lambda value: None if value is None else parse(value))


def _check_day(value: Any) -> int:
    if not str(value).isdigit() or not 1 <= int(value) <= 31:
        raise ConfigError(f"--monthly: day {value!r} is not 1-31")
    return int(value)


def _check_cron(value: str) -> str:
    expr = " ".join(str(value).split())
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ConfigError(
            f"--cron: {value!r} is not a cron expression "
            "(5 fields: minute hour day-of-month month day-of-week)"
        )
    return expr


def _check_rule(value: str) -> str:
    body = re.sub(r"^RRULE:", "", str(value).strip().upper()).strip()
    parts = dict(part.partition("=")[::2] for part in body.split(";") if part)
    daily_or_longer = parts.get("FREQ") in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
    checks = [
        (
            ":" in body or "DTSTART" in parts,
            "give only the RRULE part (and --start-at, no DTSTART)",
        ),
        ("COUNT" in parts, "COUNT is not supported; use UNTIL or --start-at"),
        (not daily_or_longer, "FREQ must be DAILY or longer (else use --every or --cron)"),
        (parts.get("UNTIL", "").endswith("Z"), "give UNTIL in local time, without Z"),
    ]
    problem = next((problem for failed, problem in checks if failed), None)
    if problem is None:
        try:
            rrule.rrulestr(body, dtstart=EPOCH)
        except (ValueError, TypeError) as exc:
            problem = str(exc)
    if problem:
        raise ConfigError(f"--rule: {value!r} is not usable: {problem}")
    return body


class Schedule(BaseModel):
    """When a dataset runs (the module docstring says exactly what each kind means).

    Fields take the flags' text forms too (``every="15m"``, ``at="06:00"``, ``active_hours="8-18"``,
    a naive ``start_at`` in the zone). A missing, extra or invalid field raises ConfigError.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind = "manual"
    every: Annotated[int | None, _parsed(parse_every)] = None
    at: Annotated[dt.time | None, _parsed(parse_at)] = None
    days: Annotated[tuple[str, ...] | None, _parsed(parse_days)] = None
    day: Annotated[int | None, _parsed(_check_day)] = None
    cron: Annotated[str | None, _parsed(_check_cron)] = None
    rule: Annotated[str | None, _parsed(_check_rule)] = None
    timezone: Annotated[str, _parsed(lambda name: _zone(name).key)] = "UTC"
    active_hours: Annotated[tuple[int, int] | None, _parsed(parse_active_hours)] = None
    start_at: dt.datetime | None = None

    @field_validator("start_at", mode="before")
    @classmethod
    def _start_at(cls, value: Any, info: ValidationInfo) -> Any:
        zone_name = info.data.get("timezone", "UTC")  # a naive one is local time in the zone
        return None if value is None else parse_start_at(value, zone_name)

    @field_serializer("at")
    def _at_text(self, value: dt.time | None) -> str | None:
        return None if value is None else value.strftime("%H:%M")

    @model_validator(mode="after")
    def _fits_kind(self) -> Schedule:
        for name in NEEDS[self.kind]:
            if getattr(self, name) is None:
                raise ConfigError(f"a {self.kind} schedule needs {name}")
        allowed = NEEDS[self.kind] + (OPTIONS if self.kind != "manual" else ())
        allowed += ("at",) if self.kind == "every" else ()
        for name in ("every", "at", "days", "day", "cron", "rule", *OPTIONS):
            if name not in allowed and getattr(self, name) is not None:
                raise ConfigError(f"{name} does not apply to a {self.kind} schedule")
        probe = self.start_at or EPOCH.replace(tzinfo=UTC)
        if self.kind != "manual" and next_run(self, probe) is None:
            hours = self.active_hours
            inside = f" inside --active-hours {hours[0]}-{hours[1]}" if hours else ""
            raise ConfigError(f"this schedule never runs{inside}: {describe(self)}")
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> Schedule:
        """Build a schedule from stored JSON or form fields (none means manual).

        Raises:
            ConfigError: a field is missing, unknown, or invalid for the kind.
        """
        try:
            return cls.model_validate(dict(data or {}))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "schedule"
            raise ConfigError(f"schedule {where}: {error['msg']}") from None

    @classmethod
    def from_flags(
        cls,
        *,
        manual: bool = False,
        every: str | None = None,
        daily: str | None = None,
        weekdays: str | None = None,
        weekly: str | None = None,
        monthly: str | None = None,
        cron: str | None = None,
        rule: str | None = None,
        tz: str | None = "UTC",
        active_hours: str | None = None,
        start_at: str | dt.datetime | None = None,
    ) -> Schedule:
        """Build a schedule from ``leadferry datasets schedule``'s flags (exactly one kind).

        Raises:
            ConfigError: no kind flag or several, or a value its flag refuses.
        """
        kinds = {"manual": manual or None, "every": every, "daily": daily, "weekdays": weekdays}
        kinds |= {"weekly": weekly, "monthly": monthly, "cron": cron, "rule": rule}
        chosen = [kind for kind, value in kinds.items() if value not in (None, "")]
        if len(chosen) != 1:
            given = ", ".join(f"--{kind}" for kind in chosen) or "none"
            raise ConfigError(
                "choose exactly one of --manual, --every, --daily, --weekdays, --weekly, "
                f"--monthly, --cron, --rule (given: {given})"
            )
        kind = chosen[0]
        fields: dict[str, Any] = {"kind": kind, "timezone": _zone(tz or "UTC").key}
        fields |= {"active_hours": active_hours, "start_at": start_at}
        if kind in ("every", "cron", "rule"):
            fields[kind] = kinds[kind]
        elif kind in ("daily", "weekdays"):
            fields["at"] = parse_at(str(kinds[kind]), f"--{kind}")
        elif kind == "weekly":
            fields["days"], fields["at"] = parse_weekly(str(weekly))
        elif kind == "monthly":
            fields["day"], fields["at"] = parse_monthly(str(monthly))
        return cls.parse(fields)

    def as_json(self) -> dict[str, Any]:
        """The stored form: the fields in use, ``at`` as ``HH:MM``, ``start_at`` in UTC."""
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def describe(self) -> str:
        return describe(self)

    def is_due(
        self, last: dt.datetime | None, now: dt.datetime, since: dt.datetime | None = None
    ) -> bool:
        """Whether a slot in ``(last, now]`` is waiting; see :func:`due_slot`."""
        return due_slot(self, last, now, since) is not None


def next_runs(schedule: Schedule, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next *count* slots strictly after *after*, oldest first, as aware UTC datetimes.

    Active hours and ``start_at`` apply; a manual schedule has none, a rule past its UNTIL
    fewer. :func:`local` shows them in the schedule's zone.
    """
    return list(islice(_slots(schedule, _aware(after, "after")), max(count, 0)))


def next_run(schedule: Schedule, after: dt.datetime) -> dt.datetime | None:
    """The first slot strictly after *after* (aware UTC), or None (manual, or a rule ended)."""
    return next(_slots(schedule, _aware(after, "after")), None)


def due_slot(
    schedule: Schedule,
    last_slot: dt.datetime | None,
    now: dt.datetime,
    since: dt.datetime | None = None,
) -> dt.datetime | None:
    """The latest slot ``s`` with ``last_slot < s <= now``, or None when none is waiting.

    However many slots passed while the service was down, only the latest comes back, so they
    collapse into one run; record it and pass it back as *last_slot*. For a schedule that never
    ran (*last_slot* None) only slots at or after *since* (e.g. when it was saved) count, or
    without *since* the latest slot up to *now*, ten years back at most. Slots before
    ``start_at`` never count.
    """
    now = _aware(now, "now")
    if schedule.kind == "manual":
        return None
    last_slot = last_slot and _aware(last_slot, "last_slot")
    since = since and _aware(since, "since") - dt.timedelta(microseconds=1)  # at *since* counts
    lower = max(t for t in (last_slot, since, now - HORIZON) if t is not None)
    # Walk back through windows of an hour, two, four ... (each read forward, so these are the
    # slots next_runs gives) until one holds a slot or the walk reaches *lower*.
    end, span = now, dt.timedelta(hours=1)
    while end > lower:
        start = max(end - span, lower)
        passed = list(takewhile(lambda slot, end=end: slot <= end, _slots(schedule, start)))
        if passed:
            return passed[-1]
        end, span = start, span * 2
    return None


def local(moment: dt.datetime, schedule: Schedule) -> dt.datetime:
    """*moment* in the schedule's zone, e.g. to print ``2026-12-01T06:00:00-08:00``."""
    return moment.astimezone(schedule.tz)


def describe(schedule: Schedule) -> str:
    """A short human description, e.g. ``every 15 minutes, 08:00-18:00 America/Los_Angeles``."""
    s, at = schedule, schedule.at.strftime("%H:%M") if schedule.at else ""
    if s.kind == "manual":
        return "manual: runs only when started"
    if s.kind == "every" and (s.every or 0) % DAY_MINUTES == 0:
        days = (s.every or 0) // DAY_MINUTES
        text = f"every {days} days" if days > 1 else "every day"
        text += f" at {_hhmm(_time_of_day(s))}"
    elif s.kind == "every":
        n = s.every or 1
        size, unit = (n // 60, "hour") if n % 60 == 0 else (n, "minute")
        text = f"every {size} {unit}s" if size != 1 else f"every {unit}"
        phase = _time_of_day(s) % dt.timedelta(minutes=n)
        text += f" from {_hhmm(phase)} each day" if phase else ""
    elif s.kind == "monthly":
        text = f"monthly on day {s.day} at {at}"
        text += " (the last day in shorter months)" if (s.day or 0) > 28 else ""
    else:
        text = {
            "daily": f"daily at {at}",
            "weekdays": f"every weekday (Mon-Fri) at {at}",
            "weekly": f"weekly on {', '.join(d.title() for d in s.days or ())} at {at}",
            "cron": f"cron {s.cron}",
        }.get(s.kind) or _rule_words(s.rule or "")
    if s.active_hours:
        text += f", {s.active_hours[0]:02d}:00-{s.active_hours[1]:02d}:00"
    if s.start_at:
        text += f", not before {local(s.start_at, s):%Y-%m-%d %H:%M}"
    return f"{text} {s.timezone}"


def _slots(s: Schedule, after: dt.datetime) -> Iterator[dt.datetime]:
    """The slots after *after* that run: active hours, start_at and the horizon applied."""
    if s.kind == "manual":
        return
    if s.start_at is not None and s.start_at > after:
        after = s.start_at - dt.timedelta(microseconds=1)  # a slot exactly at start_at runs
    limit = after + HORIZON
    for slot in _forward(s, after):
        if slot > limit:
            return
        if _active(s, slot):
            yield slot
            limit = slot + HORIZON


def _active(s: Schedule, slot: dt.datetime) -> bool:
    if s.active_hours is None:
        return True
    start, end = s.active_hours
    hour = slot.astimezone(s.tz).hour
    return start <= hour < end if start < end else (hour >= start or hour < end)


def _forward(s: Schedule, after: dt.datetime) -> Iterator[dt.datetime]:
    """Candidate slots strictly after *after*, increasing, before any filter."""
    tz = s.tz
    if _on_grid(s):
        day = _wall(after, tz).date()
        while True:
            yield from (slot for slot in _grid(s, day) if slot > after)
            day += _ONE_DAY
    # Local times map to instants in order (never backwards), so none at or before after's own
    # local time lands past *after*; of the later ones, a repeated time may land before it and
    # several skipped ones on the same instant, hence the strict check.
    wall, last = _wall(after, tz), after
    if s.kind == "cron":
        walls = _cron_walls(s, wall)
    else:
        walls = (moment for moment in _calendar(s, wall) if moment > wall)
    for moment in walls:
        slot = _instant(moment, tz)
        if slot > last:
            yield slot
            last = slot


def _on_grid(s: Schedule) -> bool:
    return s.kind == "every" and (s.every or 0) < DAY_MINUTES


def _grid(s: Schedule, day: dt.date) -> list[dt.datetime]:
    """The slots of local *day*: its midnight + phase + k * every, before the next midnight."""
    step = dt.timedelta(minutes=s.every or 1)
    first = start_of_day(day, s.tz).astimezone(UTC) + _time_of_day(s) % step
    end = start_of_day(day + _ONE_DAY, s.tz).astimezone(UTC)
    return [first + k * step for k in range(max(0, -((first - end) // step)))]


def _cron_walls(s: Schedule, wall: dt.datetime) -> Iterator[dt.datetime]:
    """Local times of the cron expression strictly after *wall*, increasing."""
    times = croniter(s.cron or "", wall)
    with contextlib.suppress(CroniterBadDateError):  # no match within croniter's 50 years
        while True:
            yield times.get_next(dt.datetime)


def _calendar(s: Schedule, start: dt.datetime) -> rrule.rrulebase:
    """An rrule whose occurrences from naive local *start* on are the schedule's local times.

    The built-in kinds have every BY part explicit and INTERVAL=1 (every N days: a start aligned
    on the anchor), so they may start anywhere, which keeps them fast; a rule has a fixed start.
    """
    if s.kind == "rule":
        first = _wall(s.start_at, s.tz) if s.start_at else EPOCH
        return _fixed_rule(s.rule or "", first)
    time = _time_of_day(s) if s.kind == "every" else _delta(s.at or dt.time())
    seconds = int(time.total_seconds())
    at = {"byhour": seconds // 3600, "byminute": seconds // 60 % 60, "bysecond": seconds % 60}
    start = dt.datetime.combine(start.date(), dt.time())
    if s.kind == "every":
        days = (s.every or DAY_MINUTES) // DAY_MINUTES
        anchor = _wall(s.start_at, s.tz).date() if s.start_at else EPOCH.date()
        start -= dt.timedelta(days=(start.date() - anchor).days % days)
        return rrule.rrule(rrule.DAILY, interval=days, dtstart=start, **at)
    if s.kind == "daily":
        return rrule.rrule(rrule.DAILY, dtstart=start, **at)
    if s.kind in ("weekdays", "weekly"):
        days_ = [_RRULE_DAYS[day] for day in (s.days or WEEKDAYS[:5])]
        return rrule.rrule(rrule.WEEKLY, byweekday=days_, dtstart=start, **at)
    if (s.day or 1) <= 28:
        return rrule.rrule(rrule.MONTHLY, bymonthday=s.day, dtstart=start, **at)
    # The first of {day D, the last day}: day D where the month has it, else the last day.
    return rrule.rrule(rrule.MONTHLY, bymonthday=(s.day, -1), bysetpos=1, dtstart=start, **at)


@functools.lru_cache(maxsize=128)
def _fixed_rule(body: str, start: dt.datetime) -> rrule.rrulebase:
    return rrule.rrulestr(body, dtstart=start, cache=True)


_MONTHLY_NTH = re.compile(
    r"BYDAY=((?:[1-5]|-1)(MO|TU|WE|TH|FR|SA|SU)(?:,(?:[1-5]|-1)\2)*);"
    r"BYHOUR=(\d+);BYMINUTE=(\d+);FREQ=MONTHLY"
)


def _rule_words(body: str) -> str:
    """``2nd and 4th Sunday of the month at 06:00`` for that common shape, else the rule."""
    match = _MONTHLY_NTH.fullmatch(";".join(sorted(body.split(";"))))
    if not match:
        return f"rule {body}"
    ordinals = {"1": "1st", "2": "2nd", "3": "3rd", "4": "4th", "5": "5th", "-1": "last"}
    which = " and ".join(ordinals[nth] for nth in re.findall(r"(-?\d)\w\w", match[1]))
    day = calendar.day_name[[str(day) for day in rrule.weekdays].index(match[2])]
    return f"{which} {day} of the month at {int(match[3]):02d}:{int(match[4]):02d}"


def _instant(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of naive local *wall*: the first when a fall-back repeats it, the first
    instant after the gap when a spring-forward skips it."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=0 reads the time with the offset from before the jump (an instant after
    # it) and fold=1 with the one after (an instant before it): find the jump between them.
    low, high = wall.replace(tzinfo=tz, fold=1).astimezone(UTC), first
    target = high.astimezone(tz).utcoffset()
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) // 2
        low, high = (low, middle) if middle.astimezone(tz).utcoffset() == target else (middle, high)
    return high.replace(microsecond=0)


def _wall(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The naive local wall-clock time of aware *moment* in *tz*."""
    return moment.astimezone(tz).replace(tzinfo=None, fold=0)


def _time_of_day(s: Schedule) -> dt.timedelta:
    """The start time: ``at``, else start_at's local time of day, else midnight."""
    if s.at is not None:
        return _delta(s.at)
    return _delta(_wall(s.start_at, s.tz).time()) if s.start_at else dt.timedelta(0)


def _delta(time: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=time.hour, minutes=time.minute, seconds=time.second)


def _hhmm(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a time-zone-aware datetime")
    return moment.astimezone(UTC)
