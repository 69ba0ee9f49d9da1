"""``leadferry datasets``: what to pull (report, parameters, dates) and how to keep it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from leadferry.cli.common import (
    DateFlag,
    DaysBackFlag,
    FromDaysBackFlag,
    FromFlag,
    ToDaysBackFlag,
    ToFlag,
    any_date_flag,
    console,
    date_selection,
    days_of,
    key_values,
    now,
    open_store,
    print_json,
    print_table,
    when,
)
from leadferry.dates import DateSelection, today_in, zone
from leadferry.errors import ConfigError

if TYPE_CHECKING:
    from leadferry.store import Dataset, DatasetSpec, Store

app = typer.Typer(help="Create, list, show, edit and remove datasets.", no_args_is_help=True)

ParamFlag = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A report parameter, NAME=VALUE (repeatable)."),
]
TzFlag = Annotated[
    str | None,
    typer.Option("--tz", help="Time zone of the dates (default: the account's)."),
]
UpdateFlag = Annotated[
    str | None,
    typer.Option("--update", help="Update method: replace, append, merge or partition."),
]
MergeKeyFlag = Annotated[
    str | None,
    typer.Option("--merge-key", help="Column(s) to merge on, comma-separated (merge only)."),
]
IncrementalFlag = Annotated[
    bool | None,
    typer.Option(
        "--incremental/--no-incremental",
        help="Load only what changed since the last run (reports with a change timestamp).",
    ),
]
LookbackFlag = Annotated[
    int | None,
    typer.Option(
        "--lookback", help="Incremental: minutes re-read before the cursor (late changes)."
    ),
]
IncrementalStartFlag = Annotated[
    str | None,
    typer.Option("--incremental-start", help="Incremental: the first run loads changes since D."),
]


def incremental_settings(
    on: bool | None, lookback: int | None, start: str | None, current: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The incremental settings the flags ask for (None: not incremental)."""
    if on is False:
        return None
    if on is None and current is None:
        if lookback is not None or start is not None:
            raise ConfigError("--lookback and --incremental-start need --incremental")
        return None
    settings = dict(current or {"lookback_minutes": 60})
    if lookback is not None:
        settings["lookback_minutes"] = lookback
    if start is not None:
        settings["start"] = start
    return settings


DescriptionFlag = Annotated[
    str | None, typer.Option("--description", help="What this dataset is for.")
]


def _validate(store: Store, spec: DatasetSpec) -> dict[str, Any]:
    """Check a dataset before saving it: report, parameters, dates (resolved for today), zone."""
    from leadferry.connectors import get_connector
    from leadferry.runner import check_dataset_settings

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
        timezone = spec.timezone or account.config.get("timezone") or connector.default_timezone()
        DateSelection.parse(spec.date_selection).resolve(timezone, today_in(timezone, now()))
    return typed


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Dataset name; also its warehouse schema.")],
    account: Annotated[str, typer.Option("--account", "-a", help="The account to use.")],
    report: Annotated[str, typer.Option("--report", "-r", help="The report slug.")],
    param: ParamFlag = None,
    date: DateFlag = None,
    days_back: DaysBackFlag = None,
    from_date: FromFlag = None,
    from_days_back: FromDaysBackFlag = None,
    to_date: ToFlag = None,
    to_days_back: ToDaysBackFlag = None,
    tz: TzFlag = None,
    update: UpdateFlag = "replace",
    merge_key: MergeKeyFlag = None,
    incremental: IncrementalFlag = None,
    lookback: LookbackFlag = None,
    incremental_start: IncrementalStartFlag = None,
    description: DescriptionFlag = "",
) -> None:
    """Create a dataset from a report, its parameters and a date selection."""
    from leadferry.store import DatasetSpec

    selection = date_selection(date, days_back, from_date, from_days_back, to_date, to_days_back)
    spec = DatasetSpec(
        name=name,
        account=account,
        report=report,
        params=key_values(param or [], "--param"),
        date_selection=selection.as_json(),
        timezone=tz,
        update_method=update or "replace",
        merge_key=merge_key,
        description=description or "",
        incremental=incremental_settings(incremental, lookback, incremental_start, None),
    )
    with open_store() as store:
        typed = _validate(store, spec)
        store.create_dataset(dataclasses.replace(spec, params=typed))
    console.print(
        f"created dataset {name} ({report}, {selection.describe()}, {spec.update_method})"
    )


@app.command("edit")
def edit(
    name: Annotated[str, typer.Argument(help="The dataset to change.")],
    account: Annotated[str | None, typer.Option("--account", "-a", help="Another account.")] = None,
    report: Annotated[str | None, typer.Option("--report", "-r", help="Another report.")] = None,
    param: ParamFlag = None,
    date: DateFlag = None,
    days_back: DaysBackFlag = None,
    from_date: FromFlag = None,
    from_days_back: FromDaysBackFlag = None,
    to_date: ToFlag = None,
    to_days_back: ToDaysBackFlag = None,
    default_dates: Annotated[
        bool, typer.Option("--default-dates", help="Go back to Default (yesterday).")
    ] = False,
    tz: TzFlag = None,
    update: UpdateFlag = None,
    merge_key: MergeKeyFlag = None,
    incremental: IncrementalFlag = None,
    lookback: LookbackFlag = None,
    incremental_start: IncrementalStartFlag = None,
    description: DescriptionFlag = None,
) -> None:
    """Change a dataset; flags not given keep their value."""
    from leadferry.store import DatasetSpec

    with open_store() as store:
        current = store.get_dataset(name)
        changes: dict[str, Any] = {}
        if account is not None:
            changes["account"] = account
        if report is not None:
            changes["report"] = report
        if param:
            changes["params"] = {**current.params, **key_values(param, "--param")}
        dates = (date, days_back, from_date, from_days_back, to_date, to_days_back)
        if default_dates:
            changes["date_selection"] = {}
        elif any_date_flag(*dates):
            changes["date_selection"] = date_selection(*dates).as_json()
        for key, value in (
            ("timezone", tz),
            ("update_method", update),
            ("merge_key", merge_key),
            ("description", description),
        ):
            if value is not None:
                changes[key] = value
        if incremental is not None or lookback is not None or incremental_start is not None:
            changes["incremental"] = incremental_settings(
                incremental, lookback, incremental_start, current.incremental
            )
        if changes.get("update_method", current.update_method) != "merge" and merge_key is None:
            changes["merge_key"] = None
        merged = {field: getattr(current, field) for field in DatasetSpec.__dataclass_fields__}
        spec = DatasetSpec(**(merged | changes))
        changes["params"] = _validate(store, spec)
        store.update_dataset(name, **changes)
    console.print(f"updated dataset {name}")


@app.command("list")
def list_(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List datasets with their report, dates, update method and last run."""
    from leadferry.connectors import get_connector
    from leadferry.runner import dataset_timezone

    with open_store() as store:
        datasets = store.list_datasets()
        accounts = {a.name: a for a in store.list_accounts()}
    zones = {
        d.name: zone(dataset_timezone(d, accounts[d.account], get_connector(d.connector)))
        for d in datasets
    }
    if json_:
        print_json([describe(d, zones[d.name]) for d in datasets])
        return
    print_table(
        None,
        ["dataset", "account", "report", "dates", "update", "last run", "status", "rows"],
        [
            (
                d.name,
                d.account,
                f"{d.connector}/{d.report}",
                DateSelection.parse(d.date_selection).describe(),
                d.update_method,
                when(d.last_run.started_at) if d.last_run else "never",
                d.last_run.status if d.last_run else "",
                d.last_run.total_rows if d.last_run else "",
            )
            for d in datasets
        ],
    )


def describe(dataset: Dataset, tz: ZoneInfo) -> dict[str, Any]:
    last = dataset.last_run
    return {
        "name": dataset.name,
        "account": dataset.account,
        "connector": dataset.connector,
        "report": dataset.report,
        "params": dataset.params,
        "date_selection": dataset.date_selection or {},
        "dates": DateSelection.parse(dataset.date_selection).describe(),
        "timezone": dataset.timezone,
        "update_method": dataset.update_method,
        "merge_key": dataset.merge_key,
        "description": dataset.description,
        "schedule": _schedule_text(dataset),
        "next_run": when(dataset.state.next_run_at, tz) or None,
        "retry": {"every_minutes": dataset.retry_every, "retries": dataset.retries}
        if dataset.retry_every
        else None,
        "when_failing": dataset.when_failing,
        "failing": dataset.state.failing,
        "stale_after_minutes": dataset.stale_after,
        "alert_webhook": _scrubbed(dataset.alert_webhook),
        "alert_emails": dataset.alert_emails,
        "incremental": dataset.incremental,
        "cursor": when(dataset.state.cursor, tz) or None,
        "last_run": None
        if last is None
        else {
            "status": last.status,
            "started_at": when(last.started_at),
            "finished_at": when(last.finished_at),
            "seconds": last.duration,
            "window": days_of(last.window_start, last.window_end, tz) or None,
            "rows": last.rows,
            "error": last.error,
        },
    }


def _schedule_text(dataset: Dataset) -> str:
    from leadferry.schedule import Schedule

    return Schedule.parse(dataset.schedule).describe() if dataset.schedule else "manual"


def _scrubbed(url: str | None) -> str | None:
    """A webhook URL without the token its query string or user info may carry."""
    from leadferry.connectors.base import scrub_url

    return scrub_url(url) if url else None


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The dataset to show.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a dataset's settings, the window its next run would take, and its last runs."""
    from leadferry.connectors import get_connector
    from leadferry.runner import dataset_timezone

    with open_store() as store:
        dataset = store.get_dataset(name)
        account = store.get_account(dataset.account)
        runs = store.list_runs(name, limit=5)
    connector = get_connector(dataset.connector)
    timezone = dataset_timezone(dataset, account, connector)
    details = describe(dataset, zone(timezone))
    details["effective_timezone"] = timezone
    if connector.report(dataset.report).dated:
        window = DateSelection.parse(dataset.date_selection).resolve(
            timezone, today_in(timezone, now())
        )
        details["next_window"] = window.as_json()
    if json_:
        print_json(details)
        return
    for key, value in details.items():
        if key != "last_run":
            console.print(f"[bold]{key}[/bold]: {value}")
    print_table(
        "last runs",
        ["run", "trigger", "status", "window", "rows", "started", "error"],
        [
            (
                r.id,
                r.trigger,
                r.status,
                days_of(r.window_start, r.window_end, zone(timezone)),
                f"{r.total_rows:,}",
                when(r.started_at, zone(timezone)),
                r.error or "",
            )
            for r in runs
        ],
    )


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The dataset to remove.")],
    drop_data: Annotated[
        bool, typer.Option("--drop-data", help="Also drop its schema from the warehouse.")
    ] = False,
) -> None:
    """Remove a dataset and its history (its warehouse tables stay unless --drop-data)."""
    from leadferry.cli.common import settings
    from leadferry.warehouse import drop_schema

    with open_store() as store:
        store.get_dataset(name)
        if drop_data:
            drop_schema(settings(), name)
        store.remove_dataset(name)
    console.print(f"removed dataset {name}" + (" and its data" if drop_data else ""))
