"""Planning a run: check what a dataset is made of, then resolve its account, connector,
report, parameters, time zone and window before anything is fetched."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leadferry.apply import MAX_IDENTIFIER
from leadferry.connectors import get_connector
from leadferry.dates import DateSelection, DateWindow, parse_day, start_of_day, zone
from leadferry.errors import ConfigError
from leadferry.store import Account, DatasetSpec
from leadferry.store.records import AccountLine, check_update_method

if TYPE_CHECKING:  # a dataset's zone is read without importing the connectors' HTTP and Arrow
    from leadferry.connectors.base import Connector, Report


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything a run needs, resolved and validated before anything is fetched (Load
    Preview plans an unsaved dataset the same way)."""

    dataset: DatasetSpec
    account: Account
    connector: type[Connector]
    report: Report
    params: dict[str, Any]
    timezone: str
    window: DateWindow | None
    updated_since: dt.datetime | None = None
    """Incremental runs of reports that filter changes themselves: changes since then."""

    @property
    def recorded_window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """What the history shows: the window, or the span of changes asked for."""
        if self.window is not None:
            return self.window.start, self.window.end
        return self.updated_since, None

    @property
    def merge_key(self) -> tuple[str, ...]:
        if self.dataset.merge_key:
            return tuple(part.strip() for part in self.dataset.merge_key.split(","))
        return self.report.merge_key


def effective_timezone(
    timezone: str | None, account: Account | AccountLine, connector: type[Connector] | str
) -> str:
    """The zone a dataset's dates are in: its own *timezone*, else its account's, else the
    connector's default (*connector* by name: looked up only then, which imports it)."""
    found = timezone or account.config.get("timezone")
    if found:
        return found
    if isinstance(connector, str):
        connector = get_connector(connector)
    return connector.default_timezone()


def check_dataset_settings(
    connector: type[Connector],
    report_slug: str,
    params: dict[str, Any],
    date_selection: DateSelection,
    timezone: str | None,
    update_method: str,
    merge_key: str | None,
    incremental: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate what a dataset is made of; return the typed parameters.

    Raises:
        ConfigError: naming the report, parameter, date flag, zone or method that is wrong.
    """
    report = connector.report(report_slug)
    typed = report.parse_params(params)
    if not report.dated and date_selection.kind != "default":
        raise ConfigError(f"report {report.slug} takes no date selection")
    if timezone:
        zone(timezone)
    check_update_method(update_method)
    _check_names(report, merge_key)
    if update_method == "partition" and not report.day_column:
        raise ConfigError(f"report {report.slug} has no date column to partition by")
    if merge_key is not None and update_method != "merge":
        raise ConfigError("--merge-key only applies to the merge update method")
    main = report.tables[0]
    columns = main.columns
    if merge_key is not None and columns and not main.more_columns:
        unknown = [key for key in merge_key.split(",") if key.strip() not in columns]
        if unknown:
            raise ConfigError(
                f"--merge-key {', '.join(unknown)}: not a column of report {report.slug} "
                f"(its columns: {', '.join(columns)})"
            )
    if incremental is not None:
        if not report.cursor_column:
            raise ConfigError(f"report {report.slug} cannot be loaded incrementally")
        if update_method != "merge":
            raise ConfigError(
                "an incremental dataset needs the merge update method (--update merge)"
            )
        if int(incremental.get("lookback_minutes", 0)) < 0:
            raise ConfigError("--lookback must be 0 minutes or more")
        if incremental.get("start"):
            parse_day(str(incremental["start"]), "--incremental-start")
    return typed


def _check_names(report: Report, merge_key: str | None) -> None:
    """Refuse a table or column name PostgreSQL would cut short (it keeps 63 characters)."""
    names = [("table", table.name) for table in report.tables]
    names += [("column", column) for table in report.tables for column in table.columns]
    names += [("merge key column", key.strip()) for key in (merge_key or "").split(",")]
    for kind, name in names:
        if len(name) > MAX_IDENTIFIER:
            raise ConfigError(
                f"{kind} {name[:24]}... of report {report.slug} is longer than the "
                f"{MAX_IDENTIFIER} characters a warehouse name may have: choose a shorter one"
            )


def plan_run(
    account: Account,
    dataset: DatasetSpec,
    now: dt.datetime,
    window: DateWindow | None = None,
    cursor: dt.datetime | None = None,
) -> RunPlan:
    """Check *dataset* (of *account*) and resolve its connector, report, parameters, zone and
    window for *now*; *window* replaces the date selection's, *cursor* is the newest change an
    incremental dataset loaded.

    Raises:
        ConfigError: naming what is wrong (see :func:`check_dataset_settings`), or a window
            that cannot be resolved (InvalidWindowError).
    """
    connector = get_connector(account.connector)
    report = connector.report(dataset.report)
    params = check_dataset_settings(
        connector,
        dataset.report,
        dataset.params,
        dataset.date_selection,
        dataset.timezone,
        dataset.update_method,
        dataset.merge_key,
        dataset.incremental,
    )
    timezone = effective_timezone(dataset.timezone, account, connector)
    if window is None and dataset.incremental is not None:
        since = _changes_since(dataset, cursor, timezone, now)
        if report.window_is_cursor:
            window = DateWindow(since, now.astimezone(zone(timezone)))
        else:
            return RunPlan(dataset, account, connector, report, params, timezone, None, since)
    if window is None and report.dated:
        window = dataset.date_selection.window_at(timezone, now)
    return RunPlan(dataset, account, connector, report, params, timezone, window)


def _changes_since(
    dataset: DatasetSpec, cursor: dt.datetime | None, timezone: str, now: dt.datetime
) -> dt.datetime:
    """Where an incremental run starts: the cursor less the lookback, else the configured start
    (else the start of the date selection's window)."""
    settings = dataset.incremental or {}
    tz = zone(timezone)
    if cursor is not None:
        lookback = dt.timedelta(minutes=int(settings.get("lookback_minutes", 0)))
        return (cursor - lookback).astimezone(tz)
    if settings.get("start"):
        return start_of_day(parse_day(str(settings["start"]), "--incremental-start"), tz)
    return dataset.date_selection.window_at(timezone, now).start
