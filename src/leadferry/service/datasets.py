"""Datasets: validating, creating, changing, scheduling and describing them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from leadferry.connectors import get_connector
from leadferry.dates import DateWindow, zone
from leadferry.errors import ConfigError
from leadferry.service.runs import days_of, when

if TYPE_CHECKING:
    from leadferry.schedule import Schedule
    from leadferry.store import Dataset, DatasetSpec, Store

SPEC_FIELDS = frozenset(
    (
        "account",
        "report",
        "params",
        "date_selection",
        "timezone",
        "update_method",
        "merge_key",
        "description",
        "owner",
        "display_name",
        "incremental",
    )
)
"""What :func:`edit_dataset` changes; schedules go through :func:`set_schedule`."""
DISPLAY_NAME_MOST = 200


def validate(store: Store, spec: DatasetSpec, now: dt.datetime) -> dict[str, Any]:
    """Check a dataset before saving it: report, parameters, dates (resolved for today), zone.

    Returns the typed parameters.

    Raises:
        NotFoundError: no such account.
        ConfigError: naming the report, parameter, date, zone or update method that is wrong.
    """
    from leadferry.run.plan import check_dataset_settings, effective_timezone

    account = store.get_account(spec.account)
    connector = get_connector(account.connector)
    typed = check_dataset_settings(
        connector,
        spec.report,
        spec.params,
        spec.date_selection,
        spec.timezone,
        spec.update_method,
        spec.merge_key,
        spec.incremental,
    )
    if connector.report(spec.report).dated:
        spec.date_selection.window_at(effective_timezone(spec.timezone, account, connector), now)
    return typed


def check_display_name(text: str) -> None:
    """Raise ConfigError for a display name longer than :data:`DISPLAY_NAME_MOST`."""
    if len(text) > DISPLAY_NAME_MOST:
        raise ConfigError(f"a display name takes at most {DISPLAY_NAME_MOST} characters")


def create_dataset(store: Store, spec: DatasetSpec, now: dt.datetime) -> Dataset:
    """Validate and save a new dataset (the update method in any case: ``Replace``).

    Raises:
        ConfigError: invalid settings (named); ConflictError: the name is taken;
        NotFoundError: no such account.
    """
    spec = dataclasses.replace(spec, update_method=spec.update_method.lower())
    check_display_name(spec.display_name)
    typed = validate(store, spec, now)
    return store.create_dataset(dataclasses.replace(spec, params=typed))


def edit_dataset(store: Store, name: str, changes: Mapping[str, Any], now: dt.datetime) -> Dataset:
    """Change some of a dataset's settings; the others keep their value.

    A merge key is dropped when the update method is no longer merge.

    Raises:
        NotFoundError: no such dataset or account; ConfigError: invalid settings (named).
    """
    from leadferry.store import DatasetSpec

    unknown = set(changes) - SPEC_FIELDS
    if unknown:
        raise ConfigError(f"cannot change {', '.join(sorted(unknown))} of a dataset here")
    current = store.get_dataset(name)
    changes = dict(changes)
    if "update_method" in changes:
        changes["update_method"] = str(changes["update_method"]).lower()
    check_display_name(changes.get("display_name", ""))
    if changes.get("account", current.account) != current.account:
        moved_to = store.get_account(changes["account"]).connector
        if moved_to != current.connector:
            raise ConfigError(
                f"dataset {name} reads {get_connector(current.connector).label} reports: "
                f"move it to another {get_connector(current.connector).label} account"
            )
    if changes.get("update_method", current.update_method) != "merge" and not changes.get(
        "merge_key"
    ):
        changes["merge_key"] = None
    merged = {field: getattr(current, field) for field in DatasetSpec.__dataclass_fields__}
    spec = DatasetSpec(**(merged | changes))
    changes["params"] = validate(store, spec, now)
    return store.update_dataset(name, **changes)


def schedule_changes(
    plan: Schedule | None,
    *,
    retry_every: int | None = None,
    retries: int | None = None,
    no_retry: bool = False,
    when_failing: str | None = None,
    stale_after: int | None = None,
    alert_webhook: str | None = None,
    alert_emails: list[str] | None = None,
) -> dict[str, Any]:
    """The dataset fields a Scheduling pane sets; None (*plan* too) leaves a field as it is.

    Raises:
        ConfigError: retry settings that contradict each other or are below 1.
    """
    changes: dict[str, Any] = {}
    if plan is not None:
        changes["schedule"] = None if plan.kind == "manual" else plan.as_json()
    if no_retry and (retry_every is not None or retries is not None):
        raise ConfigError(
            "do not retry cannot go with a retry interval or count (retry_every, retries)"
        )
    if no_retry:
        changes |= {"retry_every": None, "retries": 0}
    elif (retry_every is None) != (retries is None):
        raise ConfigError(
            "give the retry interval in minutes and the number of retries together "
            "(retry_every and retries; --retry-every and --retries)"
        )
    elif retry_every is not None and retries is not None:
        if retry_every < 1 or retries < 1:
            raise ConfigError("the retry interval and the number of retries must be 1 or more")
        changes |= {"retry_every": retry_every, "retries": retries}
    if stale_after is not None:
        if stale_after < 1:
            raise ConfigError("the stale-data alert needs 1 minute or more (stale_after)")
        changes["stale_after"] = stale_after
    if when_failing is not None:
        changes["when_failing"] = when_failing
    if alert_webhook is not None:
        changes["alert_webhook"] = check_webhook(alert_webhook) if alert_webhook else None
    if alert_emails is not None:
        changes["alert_emails"] = list(alert_emails)
    return changes


def check_webhook(url: str) -> str:
    """*url* if alerts can be POSTed to it: an http(s) URL with a host.

    Raises:
        ConfigError: anything else (the message shows the URL without its secrets).
    """
    from leadferry.connectors.base import check_http_url

    return check_http_url(url, "the alert webhook")


def set_schedule(
    store: Store, name: str, changes: Mapping[str, Any], now: dt.datetime
) -> list[dt.datetime]:
    """Save a dataset's schedule fields, recompute its next run; return the next five runs
    in the schedule's zone.

    Raises:
        NotFoundError: no such dataset; ConfigError: an invalid value (named).
    """
    from leadferry.scheduler import reschedule

    dataset = store.update_dataset(name, **changes)
    reschedule(store, dataset, now)
    return upcoming_runs(dataset, now)


def upcoming_runs(plan: Schedule | Dataset, now: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next *count* runs of a schedule (or a dataset's; none when manual or paused), in its
    zone."""
    from leadferry.schedule import Schedule, local, next_runs

    if not isinstance(plan, Schedule):
        if not plan.schedule or is_paused(plan):
            return []
        plan = Schedule.parse(plan.schedule)
    return [local(slot, plan) for slot in next_runs(plan, now, count)]


def dataset_zone(store: Store, dataset: Dataset) -> str:
    """The time zone a dataset's windows are in: its own, its account's, its connector's."""
    from leadferry.run.plan import effective_timezone

    account = store.account_line(dataset.account)
    return effective_timezone(dataset.timezone, account, dataset.connector)


def is_paused(dataset: Dataset) -> bool:
    """Whether the dataset's schedule is paused: its retries ran out and it waits for a resume."""
    return dataset.state.failing and dataset.when_failing == "pause"


def next_run_at(dataset: Dataset) -> dt.datetime | None:
    """When the dataset runs next on its own: None when manual or paused."""
    return None if is_paused(dataset) else dataset.state.next_run_at


def next_window(dataset: Dataset, timezone: str, now: dt.datetime) -> DateWindow | None:
    """The window the dataset's next run will load: the run its schedule has next (or a run
    due now, or started now when it has none). None for undated reports and paused datasets.

    Raises:
        ConfigError: the selection cannot be resolved on that day.
    """
    if is_paused(dataset) or not get_connector(dataset.connector).report(dataset.report).dated:
        return None
    at = max(dataset.state.next_run_at or now, now)
    return dataset.date_selection.window_at(timezone, at)


def dates_text(dataset: Dataset) -> str:
    """The dataset's date selection in words ("last 7 days"); "no dates" for undated reports,
    which always read the vendor's current figures."""
    if not get_connector(dataset.connector).report(dataset.report).dated:
        return "no dates (the report takes none)"
    return dataset.date_selection.describe()


def schedule_text(dataset: Dataset) -> str:
    if not dataset.schedule:
        return "manual"
    return _described_schedule(json.dumps(dataset.schedule, sort_keys=True))


@lru_cache(maxsize=1024)
def _described_schedule(stored: str) -> str:
    """The words of a stored schedule (its JSON text): worked out once for each schedule,
    since parsing one checks that it ever runs, a cost the API's list would pay per line."""
    from leadferry.schedule import Schedule

    return Schedule.parse(json.loads(stored)).describe()


def describe(dataset: Dataset, tz: ZoneInfo) -> dict[str, Any]:
    """A dataset as JSON: settings, schedule state and its last run (webhook URLs scrubbed)."""
    from leadferry.connectors.base import scrub_url

    last = dataset.last_run
    return {
        "name": dataset.name,
        "display_name": dataset.title,
        "account": dataset.account,
        "connector": dataset.connector,
        "report": dataset.report,
        "params": dataset.params,
        "date_selection": dataset.date_selection.as_json(),
        "dates": dates_text(dataset),
        "timezone": dataset.timezone,
        "update_method": dataset.update_method,
        "merge_key": dataset.merge_key,
        "description": dataset.description,
        "owner": dataset.owner,
        "schedule": schedule_text(dataset),
        "next_run": when(next_run_at(dataset), tz) or None,
        "paused": is_paused(dataset),
        "retry": {"every_minutes": dataset.retry_every, "retries": dataset.retries}
        if dataset.retry_every
        else None,
        "when_failing": dataset.when_failing,
        "failing": dataset.state.failing,
        "stale_after_minutes": dataset.stale_after,
        "alert_webhook": scrub_url(dataset.alert_webhook) if dataset.alert_webhook else None,
        "alert_emails": dataset.alert_emails,
        "incremental": dataset.incremental,
        "cursor": when(dataset.state.cursor, tz) or None,
        "last_run": None
        if last is None
        else {
            "status": last.status,
            "started_at": when(last.started_at, tz),
            "finished_at": when(last.finished_at, tz),
            "seconds": last.duration,
            "window": days_of(last.window_start, last.window_end, tz) or None,
            "rows": last.rows,
            "error": last.error,
        },
    }


def details(store: Store, name: str, now: dt.datetime) -> dict[str, Any]:
    """:func:`describe` plus the effective time zone and the window of the next run.

    Raises:
        NotFoundError: no such dataset.
    """
    dataset = store.get_dataset(name)
    timezone = dataset_zone(store, dataset)
    result = describe(dataset, zone(timezone))
    result["effective_timezone"] = timezone
    window = next_window(dataset, timezone, now)
    if window is not None:
        result["next_window"] = window.as_json()
    return result
