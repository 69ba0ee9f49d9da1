"""``leadferry datasets``: what to pull (report, parameters, dates) and how to keep it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

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
    key_values,
    local,
    open_store,
    print_json,
    print_table,
)
from leadferry.cli.serve import resume, schedule
from leadferry.clock import utc_now
from leadferry.dates import DateSelection, zone
from leadferry.errors import ConfigError
from leadferry.service.runs import days_of

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
OwnerFlag = Annotated[str | None, typer.Option("--owner", help="Who answers for this dataset.")]
DisplayNameFlag = Annotated[
    str | None,
    typer.Option("--display-name", help="How people call it (free text; default: its name)."),
]


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
    owner: OwnerFlag = None,
    display_name: DisplayNameFlag = None,
) -> None:
    """Create a dataset from a report, its parameters and a date selection."""
    from leadferry.service.datasets import create_dataset, dates_text
    from leadferry.store import DatasetSpec

    selection = date_selection(date, days_back, from_date, from_days_back, to_date, to_days_back)
    spec = DatasetSpec(
        name=name,
        account=account,
        report=report,
        params=key_values(param or [], "--param"),
        date_selection=selection,
        timezone=tz,
        update_method=update or "replace",
        merge_key=merge_key,
        description=description or "",
        owner=owner,
        display_name=(display_name or "").strip(),
        incremental=incremental_settings(incremental, lookback, incremental_start, None),
    )
    with open_store() as store:
        created = create_dataset(store, spec, utc_now())
    console.print(
        f"created dataset {name} ({report}, {dates_text(created)}, {created.update_method})"
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
    owner: OwnerFlag = None,
    display_name: DisplayNameFlag = None,
) -> None:
    """Change a dataset; flags not given keep their value."""
    from leadferry.service.datasets import edit_dataset

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
            changes["date_selection"] = DateSelection()
        elif any_date_flag(*dates):
            changes["date_selection"] = date_selection(*dates)
        for key, value in (
            ("timezone", tz),
            ("update_method", update),
            ("merge_key", merge_key),
            ("description", description),
            ("owner", owner),
            ("display_name", None if display_name is None else display_name.strip()),
        ):
            if value is not None:
                changes[key] = value
        if incremental is not None or lookback is not None or incremental_start is not None:
            changes["incremental"] = incremental_settings(
                incremental, lookback, incremental_start, current.incremental
            )
        edit_dataset(store, name, changes, utc_now())
    console.print(f"updated dataset {name}")


@app.command("list")
def list_(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List datasets with their report, dates, update method and last run."""
    from leadferry.service.datasets import dataset_zone, dates_text, describe

    with open_store() as store:
        datasets = store.list_datasets()
        zones = {d.name: zone(dataset_zone(store, d)) for d in datasets}
    if json_:
        print_json([describe(d, zones[d.name]) for d in datasets])
        return
    print_table(
        None,
        ["dataset", "account", "report", "dates", "update", "last run", "status", "rows loaded"],
        [
            (
                d.name + (f"\n{d.display_name}" if d.display_name else ""),
                d.account,
                f"{d.connector}/{d.report}",
                dates_text(d),
                d.update_method,
                local(d.last_run.started_at, zones[d.name]) if d.last_run else "never",
                d.last_run.status if d.last_run else "",
                f"{d.last_run.total_rows:,}" if d.last_run else "",
            )
            for d in datasets
        ],
    )


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The dataset to show.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a dataset's settings, the window its next run would take, and its last runs."""
    from leadferry.service.datasets import details as dataset_details

    with open_store() as store:
        details = dataset_details(store, name, utc_now())
        runs = store.list_runs(name, limit=5)
    timezone = details["effective_timezone"]
    if json_:
        print_json(details)
        return
    from rich.markup import escape

    tz = zone(timezone)
    shown = dict(details)
    for key in ("next_run", "cursor"):
        if shown.get(key):
            shown[key] = local(dt.datetime.fromisoformat(shown[key]), tz)
    if "next_window" in shown:
        window = shown["next_window"]
        starts, ends = (dt.datetime.fromisoformat(window[end]) for end in ("start", "end"))
        shown["next_window"] = days_of(starts, ends, tz)
    for key, value in shown.items():
        if key != "last_run":
            console.print(f"[bold]{key}[/bold]: {escape(plain(value))}")
    print_table(
        f"last runs (times in {timezone})",
        ["run", "trigger", "status", "window", "rows loaded", "started", "error"],
        [
            (
                r.id,
                r.trigger,
                r.status,
                days_of(r.window_start, r.window_end, tz),
                f"{r.total_rows:,}",
                local(r.started_at, tz),
                r.error or "",
            )
            for r in runs
        ],
    )


def plain(value: Any) -> str:
    """A setting as a person writes it: ``lid=1``, ``a, b``, ``yes``; nothing set is ``-``."""
    if value is None or value == {} or value == [] or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{key}={plain(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(plain(item) for item in value)
    return str(value)


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The dataset to remove.")],
    drop_data: Annotated[
        bool, typer.Option("--drop-data", help="Also drop its schema from the warehouse.")
    ] = False,
) -> None:
    """Remove a dataset and its history (its warehouse tables stay unless --drop-data)."""
    from leadferry.cli.common import settings
    from leadferry.service.data import remove_dataset

    with open_store() as store:
        remove_dataset(store, settings(), name, drop_data=drop_data)
    console.print(f"removed dataset {name}" + (" and its data" if drop_data else ""))


# Scheduling lives beside `serve`, which runs the schedules; it is a dataset's subcommand.
app.command("schedule")(schedule)
app.command("resume")(resume)
