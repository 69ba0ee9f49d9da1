"""Add DataSet's form controls, mapped to the domain's shapes and back.

The REST API takes :class:`~leadferry.dates.DateSelection` and
:class:`~leadferry.schedule.Schedule` JSON directly; the wizard's panes offer the seeds'
controls instead (Duration, Report Date, Start Date ...; Basic and Advanced scheduling; Retry;
update method). This module turns those controls into the domain's values, with errors keyed by
the control that is wrong, and turns saved values back into controls for Edit. It knows nothing
of HTTP: every function takes a mapping of control name to text.

Control names are the form fields' ``name`` attributes and the keys of :class:`FormError`'s
``errors``. Values are stripped text; an empty value is "not given".
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

from leadferry.connectors.base import Param, Report
from leadferry.dates import DateSelection, DateWindow, today_in, zone
from leadferry.errors import ConfigError, InvalidWindowError
from leadferry.schedule import DAY_MINUTES, WEEKDAYS, Schedule

Values = Mapping[str, Any]


class FormError(ConfigError):
    """Some controls hold invalid values; ``errors`` maps each control's name to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def text(values: Values, name: str) -> str:
    """The stripped text of control *name* ('' when absent)."""
    value = values.get(name)
    return "" if value is None else str(value).strip()


FIELD_NAMES = {
    "date": "the report date",
    "days_back": "the report date's days back",
    "from_date": "the start date",
    "from_days_back": "the start date's days back",
    "to_date": "the end date",
    "to_days_back": "the end date's days back",
    "every_n": "the time between runs",
    "month_day": "the day of the month",
    "retry_every": "the minutes between retries",
    "retries": "the number of retries",
    "stale_after": "the stale-data alert's minutes",
    "lookback": "the lookback minutes",
    "incremental_start": "the date the first run loads changes since",
}
"""What an error message calls each numeric or date control, so that several errors shown
together (the window line, Load Preview) each say which control they are about."""


def _count(values: Values, name: str, errors: dict[str, str], *, least: int = 0) -> int | None:
    """A whole number >= *least* from control *name*; records an error when missing or bad."""
    raw = text(values, name)
    what = FIELD_NAMES[name]
    if not raw:
        errors[name] = f"Enter {what}."
    elif not re.fullmatch(r"-?\d+", raw):
        errors[name] = f"{what.capitalize()} must be a whole number, not {raw!r}."
    elif int(raw) < least:
        errors[name] = f"{what.capitalize()} must be {least} or more."
    else:
        return int(raw)
    return None


def _day(values: Values, name: str, errors: dict[str, str]) -> str | None:
    raw = text(values, name)
    what = FIELD_NAMES[name]
    if not raw:
        errors[name] = f"Choose {what}."
        return None
    try:
        return dt.date.fromisoformat(raw).isoformat()
    except ValueError:
        errors[name] = f"{what.capitalize()} must be a date (YYYY-MM-DD), not {raw!r}."
        return None


# -- Details: the date controls ---------------------------------------------------------------

DURATIONS = {"default": "Default", "date": "Specific Date", "range": "Date Range"}
"""Duration: Default (yesterday), one specific or relative date, or a date range."""
DATE_KINDS = {"specific": "Specific", "relative": "Relative"}
"""Report Date, Start Date and End Date: a specific date, or a number of days back."""

DATE_CONTROLS = (
    "duration",
    "report_date",
    "date",
    "days_back",
    "start_date_type",
    "from_date",
    "from_days_back",
    "end_date_type",
    "to_date",
    "to_days_back",
)


def date_selection_from_form(values: Values) -> DateSelection:
    """The DateSelection the date controls describe (no control: Default, yesterday).

    Raises:
        FormError: a control is missing, not a date, negative, or an unknown choice.
    """
    errors: dict[str, str] = {}
    duration = text(values, "duration") or "default"
    selection: dict[str, Any] = {}
    if duration == "date":
        kind = _kind(values, "report_date", errors)
        if kind == "specific":
            selection["date"] = _day(values, "date", errors)
        elif kind == "relative":
            selection["days_back"] = _count(values, "days_back", errors)
    elif duration == "range":
        for end, specific, relative in (
            ("start", "from_date", "from_days_back"),
            ("end", "to_date", "to_days_back"),
        ):
            kind = _kind(values, f"{end}_date_type", errors)
            if kind == "specific":
                selection[specific] = _day(values, specific, errors)
            elif kind == "relative":
                selection[relative] = _count(values, relative, errors)
    elif duration != "default":
        errors["duration"] = f"Choose one of {', '.join(DURATIONS.values())}."
    if errors:
        raise FormError(errors)
    return DateSelection.parse(selection)


def report_dates(report: Report, values: Values) -> DateSelection:
    """The date controls' selection for a dated *report*; Default for one that takes none.

    Raises:
        FormError: see :func:`date_selection_from_form`.
    """
    return date_selection_from_form(values) if report.dated else DateSelection()


def _kind(values: Values, name: str, errors: dict[str, str]) -> str | None:
    """Specific or relative (the default: specific); None, with an error, for anything else."""
    kind = text(values, name) or "specific"
    if kind not in DATE_KINDS:
        errors[name] = "Choose Specific or Relative."
        return None
    return kind


def resolve_window(values: Values, timezone: str, now: dt.datetime) -> DateWindow:
    """The window the date controls select today (at *now*) in *timezone*.

    Raises:
        FormError: an invalid control (see :func:`date_selection_from_form`), an unknown
            ``timezone``, a range that starts after it ends (on the end control) or a window
            that starts in the future (on the start control).
    """
    selection = date_selection_from_form(values)
    try:
        today = today_in(timezone, now)
    except InvalidWindowError as exc:
        raise FormError({"timezone": str(exc)}) from None
    try:
        return selection.resolve(timezone, today)
    except InvalidWindowError as exc:
        start = "date" if selection.kind == "date" else _range_end(values, "start")
        end = _range_end(values, "end")
        raise FormError({end if "after it ends" in str(exc) else start: str(exc)}) from None


def _range_end(values: Values, end: str) -> str:
    prefix = "from" if end == "start" else "to"
    relative = text(values, f"{end}_date_type") == "relative"
    return f"{prefix}_days_back" if relative else f"{prefix}_date"


def window_span(window: DateWindow) -> str:
    """``2026-11-16 .. 2026-11-22 in America/Los_Angeles (7 days)``: the days a window covers."""
    first, last = window.first_day, window.end_day - dt.timedelta(days=1)
    count = len(window.days())
    span = str(first) if first == last else f"{first} .. {last}"
    return f"{span} in {window.timezone.key} ({count} day{'s' if count > 1 else ''})"


def window_text(window: DateWindow) -> str:
    """``This selection covers 2026-11-16 .. 2026-11-22 in America/Los_Angeles (7 days).``"""
    return f"This selection covers {window_span(window)}."


def date_controls(chosen: DateSelection) -> dict[str, str]:
    """The controls that show a saved DateSelection (the inverse of the mapping above)."""
    if chosen.kind == "default":
        return {"duration": "default"}
    if chosen.kind == "date":
        return {"duration": "date", "report_date": "specific", "date": str(chosen.date)}
    if chosen.kind == "days_back":
        return {"duration": "date", "report_date": "relative", "days_back": str(chosen.days_back)}
    controls = {"duration": "range"}
    for end, specific, relative in (
        ("start", "from_date", "from_days_back"),
        ("end", "to_date", "to_days_back"),
    ):
        day, back = getattr(chosen, specific), getattr(chosen, relative)
        controls[f"{end}_date_type"] = "specific" if day is not None else "relative"
        controls[specific if day is not None else relative] = str(day if day is not None else back)
    return controls


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA zone name, sorted: the time zone inputs suggest them."""
    return tuple(sorted(zoneinfo.available_timezones()))


def check_timezone(values: Values, name: str) -> str:
    """The IANA zone in control *name*.

    Raises:
        FormError: it is empty or unknown.
    """
    raw = text(values, name)
    if not raw:
        raise FormError({name: "Enter a time zone, e.g. America/Los_Angeles or UTC."})
    try:
        return zone(raw).key
    except InvalidWindowError as exc:
        raise FormError({name: str(exc)}) from None


# -- Details: report parameters ---------------------------------------------------------------


def param_control(param_id: str) -> str:
    """The control of report parameter *param_id*."""
    return f"param_{param_id}"


def param_input_type(param: Param) -> str:
    """The HTML input type of a parameter: ``number`` for integers, else ``text``."""
    return "number" if param.type is int else "text"


def params_from_form(report: Report, values: Values) -> dict[str, Any]:
    """The report's typed parameters from their controls (``param_<id>``); empty ones are left out.

    Raises:
        FormError: a required parameter is empty, or a value does not fit its type.
    """
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {}
    for param in report.params:
        name = param_control(param.id)
        raw = text(values, name)
        if not raw:
            if param.required:
                errors[name] = f"Enter the {param.label}."
            continue
        try:
            typed[param.id] = param.parse(raw)
        except ConfigError:
            errors[name] = f"{param.label} must be a whole number, not {raw!r}."
    if errors:
        raise FormError(errors)
    return typed


# -- Scheduling -------------------------------------------------------------------------------

FREQUENCIES = {
    "manual": "Manual (only Run Now)",
    "minutes": "Every N minutes",
    "hours": "Every N hours",
    "days": "Every N days",
    "daily": "Every day",
    "weekdays": "Every weekday (Monday to Friday)",
    "weekly": "Every week, on chosen days",
    "monthly": "Every month, on a chosen day",
}
ADVANCED_KINDS = {"cron": "Cron expression", "rule": "Calendar rule (RRULE)"}
_EVERY_UNITS = {"minutes": "m", "hours": "h", "days": "d"}
_UNIT_MINUTES = {"days": DAY_MINUTES, "hours": 60, "minutes": 1}  # largest first
_TIMED = ("daily", "weekdays", "weekly", "monthly")
# Where an error of Schedule.from_flags belongs, by the flag its message starts with.
_FLAG_CONTROLS = {
    "--every": "every_n",
    "--daily": "start_time",
    "--weekdays": "start_time",
    "--weekly": "start_time",
    "--monthly": "month_day",
    "--cron": "cron",
    "--rule": "rule",
    "--tz": "schedule_timezone",
    "--active-hours": "active_from",
    "--start-at": "start_at",
}


def schedule_from_form(values: Values, days: Sequence[str] = ()) -> Schedule:
    """The schedule the Basic or Advanced controls describe, through ``Schedule.from_flags``.

    Basic: ``frequency`` (see :data:`FREQUENCIES`) with ``every_n``, ``start_time`` (HH:MM),
    the checked ``days`` (MON..SUN) and ``month_day``; Advanced: ``advanced_kind`` with ``cron``
    or ``rule``. Both: ``schedule_timezone``, optional ``active_from``/``active_to`` hours and a
    delayed first start ``start_at`` (local ``YYYY-MM-DDTHH:MM``). Every N minutes, hours or
    days runs on a grid from local midnight: its phase is the delayed first start's time of day.

    Raises:
        FormError: a missing or invalid control, or a schedule that would never run.
    """
    errors: dict[str, str] = {}
    try:
        tz = check_timezone(values, "schedule_timezone")
    except FormError as exc:
        errors |= exc.errors
        tz = "UTC"
    flags: dict[str, Any] = {}
    if text(values, "schedule_mode") == "advanced":
        kind = text(values, "advanced_kind") or "cron"
        if kind not in ADVANCED_KINDS:
            errors["advanced_kind"] = "Choose a cron expression or a calendar rule."
        elif not text(values, kind):
            errors[kind] = "Enter a cron expression." if kind == "cron" else "Enter a rule."
        else:
            flags[kind] = text(values, kind)
    else:
        flags = _basic_flags(values, days, errors)
    if "manual" not in flags:
        flags |= _options(values, errors)
    if errors:
        raise FormError(errors)
    try:
        return Schedule.from_flags(tz=tz, **flags)
    except ConfigError as exc:
        raise FormError({_schedule_control(str(exc), values): _without_flag(str(exc))}) from None


def _basic_flags(values: Values, days: Sequence[str], errors: dict[str, str]) -> dict[str, Any]:
    frequency = text(values, "frequency") or "manual"
    if frequency not in FREQUENCIES:
        errors["frequency"] = "Choose how often it runs."
        return {}
    if frequency == "manual":
        return {"manual": True}
    if frequency in _EVERY_UNITS:
        n = _count(values, "every_n", errors, least=1)
        return {"every": f"{n}{_EVERY_UNITS[frequency]}"}
    at = text(values, "start_time")
    if not re.fullmatch(r"\d{1,2}:\d{2}", at):
        errors["start_time"] = "Enter a start time (HH:MM)." if not at else f"{at!r} is not HH:MM."
    if frequency == "weekly":
        chosen = [day for day in WEEKDAYS if day in {d.strip().upper() for d in days}]
        if not chosen:
            errors["days"] = "Choose at least one day."
        return {"weekly": f"{','.join(chosen)}@{at}"}
    if frequency == "monthly":
        day = _count(values, "month_day", errors, least=1)
        if day is not None and day > 31:
            errors["month_day"] = "Enter a day from 1 to 31."
        return {"monthly": f"{day}@{at}"}
    return {frequency: at}


def _options(values: Values, errors: dict[str, str]) -> dict[str, Any]:
    """Active hours and the delayed first start, when given."""
    options: dict[str, Any] = {}
    start, end = text(values, "active_from"), text(values, "active_to")
    if start or end:
        for name, value, top in (("active_from", start, 23), ("active_to", end, 24)):
            if not value.isdigit() or int(value) > top:
                errors[name] = f"Enter an hour from 0 to {top}."
        options["active_hours"] = f"{start}-{end}"
    if text(values, "start_at"):
        options["start_at"] = text(values, "start_at")
    return options


def _schedule_control(message: str, values: Values) -> str:
    flag = message.split(":", 1)[0].strip()
    if flag in _FLAG_CONTROLS:
        return _FLAG_CONTROLS[flag]
    if "active-hours" in message:
        return "active_from"
    if text(values, "schedule_mode") == "advanced":
        return text(values, "advanced_kind") or "cron"
    return "frequency"


def _without_flag(message: str) -> str:
    """A message of Schedule without the CLI flag it starts with (the field shows where)."""
    flag, sep, rest = message.partition(": ")
    return rest[0].upper() + rest[1:] if sep and flag.startswith("--") and rest else message


def schedule_controls(schedule: Mapping[str, Any] | None, timezone: str) -> dict[str, Any]:
    """The controls that show a saved schedule (*timezone*: the zone of a manual one).

    An ``every`` schedule with a start time (which only the REST API sets) shows without it:
    its next runs, shown before saving, tell what saving it from this form would run.
    """
    plan = Schedule.parse(schedule)
    controls: dict[str, Any] = {"schedule_mode": "basic", "schedule_timezone": plan.timezone}
    if plan.kind == "manual":
        return controls | {"frequency": "manual", "schedule_timezone": timezone}
    if plan.kind in ("cron", "rule"):
        controls |= {"schedule_mode": "advanced", "advanced_kind": plan.kind}
        controls[plan.kind] = plan.cron if plan.kind == "cron" else plan.rule
    elif plan.kind == "every":
        minutes = plan.every or 1
        unit, size = next(
            (unit, size) for unit, size in _UNIT_MINUTES.items() if minutes % size == 0
        )
        controls |= {"frequency": unit, "every_n": str(minutes // size)}
    else:
        at = plan.at.strftime("%H:%M") if plan.at else ""
        controls |= {"frequency": plan.kind, "start_time": at}
        if plan.kind == "weekly":
            controls["days"] = list(plan.days or ())
        if plan.kind == "monthly":
            controls["month_day"] = str(plan.day)
    if plan.active_hours:
        controls |= {
            "active_from": str(plan.active_hours[0]),
            "active_to": str(plan.active_hours[1]),
        }
    if plan.start_at:
        controls["start_at"] = plan.start_at.astimezone(plan.tz).strftime("%Y-%m-%dT%H:%M")
    return controls


# -- Scheduling: retry, alert after failures --------------------------------------------------

RETRY_CHOICES = {"none": "Do not retry", "retry": "Retry every M minutes, up to N times"}
WHEN_FAILING = {
    "keep": "Keep the schedule: its next runs still run",
    "pause": "Pause the schedule until it is fixed (or a run succeeds)",
}


def retry_from_form(values: Values) -> dict[str, Any]:
    """The retry and alert keywords of ``service.datasets.schedule_changes``.

    Raises:
        FormError: retry minutes or count below 1, an unknown choice, a stale-data alert
            period below 1 minute.
    """
    errors: dict[str, str] = {}
    choice = text(values, "retry") or "none"
    changes: dict[str, Any] = {}
    if choice == "none":
        changes["no_retry"] = True
    elif choice == "retry":
        changes["retry_every"] = _count(values, "retry_every", errors, least=1)
        changes["retries"] = _count(values, "retries", errors, least=1)
    else:
        errors["retry"] = "Choose whether to retry."
    when_failing = text(values, "when_failing") or "keep"
    if when_failing not in WHEN_FAILING:
        errors["when_failing"] = "Choose keep or pause."
    changes["when_failing"] = when_failing
    if text(values, "stale_after"):
        changes["stale_after"] = _count(values, "stale_after", errors, least=1)
    changes |= _alert_targets(values, errors)
    if errors:
        raise FormError(errors)
    return changes


EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+")
"""An e-mail address as the REST API takes it (``alert_emails``)."""
MAX_ALERT_EMAILS = 20


def _alert_targets(values: Values, errors: dict[str, str]) -> dict[str, Any]:
    """``alert_emails`` (comma- or space-separated) and ``alert_webhook``, as
    ``datasets schedule --alert-email/--alert-webhook`` take them.

    An empty webhook control keeps the saved webhook (its URL may hold a token, so it is never
    shown back); ``alert_webhook_remove`` removes it.
    """
    from leadferry.connectors.base import check_http_url

    emails = [part for part in re.split(r"[,\s]+", text(values, "alert_emails")) if part]
    if not all(EMAIL.fullmatch(email) for email in emails):
        errors["alert_emails"] = "Enter e-mail addresses (ops@example.com), comma-separated."
    elif len(emails) > MAX_ALERT_EMAILS:
        errors["alert_emails"] = f"Enter at most {MAX_ALERT_EMAILS} e-mail addresses."
    targets: dict[str, Any] = {"alert_emails": emails}
    webhook = text(values, "alert_webhook")
    if webhook:
        try:
            targets["alert_webhook"] = check_http_url(webhook, "the alert webhook")
        except ConfigError as exc:
            errors["alert_webhook"] = str(exc)
    elif text(values, "alert_webhook_remove"):
        targets["alert_webhook"] = ""
    return targets


def retry_controls(
    retry_every: int | None,
    retries: int,
    when_failing: str,
    stale_after: int | None,
    alert_emails: list[str],
) -> dict[str, str]:
    """The controls that show a dataset's saved retry and alert settings (the webhook stays
    out: see :func:`_alert_targets`)."""
    controls = {
        "retry": "retry" if retry_every else "none",
        "when_failing": when_failing,
        "alert_emails": ", ".join(alert_emails),
    }
    if retry_every:
        controls |= {"retry_every": str(retry_every), "retries": str(retries)}
    if stale_after:
        controls["stale_after"] = str(stale_after)
    return controls


# -- Scheduling: update method ----------------------------------------------------------------

UPDATE_METHODS = {
    "replace": "Replace: the new data replaces the table",
    "append": "Append: new rows are added",
    "merge": "Merge: insert or update rows by a key",
    "partition": "Partition: replace exactly the window's days, keep the others",
}


def update_methods(report: Report) -> dict[str, str]:
    """The update methods *report* supports (partition needs a day column)."""
    return {
        m: label for m, label in UPDATE_METHODS.items() if m != "partition" or report.day_column
    }


def default_merge_key(report: Report) -> str:
    return ",".join(report.merge_key)


def update_from_form(report: Report, values: Values) -> dict[str, Any]:
    """``update_method``, ``merge_key`` (None: the report's key) and ``incremental`` settings.

    Incremental (``incremental`` checked, ``lookback`` minutes, ``incremental_start`` date)
    needs merge and a report with a change timestamp.

    Raises:
        FormError: a method the report does not support, an empty merge key, a bad lookback
            or start date.
    """
    errors: dict[str, str] = {}
    method = text(values, "update_method") or "replace"
    if method not in update_methods(report):
        errors["update_method"] = f"{report.label} supports {', '.join(update_methods(report))}."
    key = ",".join(part.strip() for part in text(values, "merge_key").split(",") if part.strip())
    if method == "merge" and not key:
        errors["merge_key"] = "Enter the column(s) to merge on, comma-separated."
    incremental = None
    if text(values, "incremental") and report.cursor_column and method == "merge":
        lookback = _count(values, "lookback", errors) if text(values, "lookback") else 60
        incremental = {"lookback_minutes": lookback}
        if text(values, "incremental_start"):
            incremental["start"] = _day(values, "incremental_start", errors)
    if errors:
        raise FormError(errors)
    merge_key = key if method == "merge" and key != default_merge_key(report) else None
    return {"update_method": method, "merge_key": merge_key, "incremental": incremental}


def update_controls(
    report: Report, method: str, merge_key: str | None, incremental: Mapping[str, Any] | None
) -> dict[str, str]:
    """The controls that show a dataset's saved update method."""
    controls = {"update_method": method, "merge_key": merge_key or default_merge_key(report)}
    if incremental is not None:
        controls["incremental"] = "on"
        controls["lookback"] = str(incremental.get("lookback_minutes", 60))
        if incremental.get("start"):
            controls["incremental_start"] = str(incremental["start"])
    return controls
