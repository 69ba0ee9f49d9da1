"""Commands that move or read data: run, history, preview, query, export."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadferry.cli.common import (
    console,
    dataset_zone,
    err_console,
    local,
    open_store,
    print_json,
    print_table,
    progress_bar,
    settings,
)
from leadferry.cli.state import state
from leadferry.errors import ConfigError
from leadferry.failures import error_line
from leadferry.service.runs import days_of
from leadferry.warehouse import DEFAULT_STATEMENT_TIMEOUT, keep_open_between_loads

if TYPE_CHECKING:
    from leadferry.connectors.base import FetchProgress
    from leadferry.settings import Settings
    from leadferry.store import Run, Store
    from leadferry.warehouse import WarehouseReader

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    for command in (run, history, preview, query, export):
        app.command(command.__name__.rstrip("_"))(command)


def run(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="The datasets to update, one after the other.", metavar="[NAME]..."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Update every dataset, in the order of their names.")
    ] = False,
) -> None:
    """Update datasets now: fetch each one's window and load it with its update method.

    The datasets named (each must exist before any runs), or with --all every dataset, run one
    after the other. When one of several fails, its error is printed with its name and the next
    one runs; the exit status is then that of the last failure.
    """
    if bool(names) == every:
        raise ConfigError("name the datasets to run, or give --all (not both)")
    config = settings()
    failed = 0
    with open_store() as store, contextlib.ExitStack() as kept:
        if every:
            chosen = [dataset.name for dataset in store.list_datasets()]
            if not chosen:
                err_console.print("no datasets yet: `leadferry datasets create --help` says how")
        else:
            chosen = list(dict.fromkeys(names or ()))
            for name in chosen:
                store.get_dataset(name)
        if len(chosen) > 1:
            # Attaching a DuckDB file of many datasets, and checkpointing it, costs far more than
            # a small load: one process's loads share one attach, as serve's and a worker's do.
            kept.enter_context(keep_open_between_loads(f"leadferry run (pid {os.getpid()})"))
        for name in chosen:
            started = time.perf_counter()
            try:
                result = _run_with_progress(store, config, name)
            except Exception as exc:
                if len(chosen) == 1 or state.debug:
                    raise
                line, failed = error_line(exc)
                err_console.print(f"error: {name}: {line}", highlight=False, markup=False)
                continue
            tz = dataset_zone(store, name)
            seconds = time.perf_counter() - started
            rows = ", ".join(f"{table}: {count:,}" for table, count in result.rows.items())
            window = days_of(result.window_start, result.window_end, tz)
            window = f" for {window[:-1]}, {tz.key})" if window else ""
            console.print(f"{name}: {rows or 'no rows'}{window} in {seconds:.1f}s", highlight=False)
            for change in result.schema_changes:
                console.print(f"{name}: schema change: {change}")
    if failed:
        raise typer.Exit(failed)


def _run_with_progress(store: Store, config: Settings, name: str) -> Run:
    """Run dataset *name* with a bar of its pages on stderr, gone once it is done."""
    from leadferry.run import run_dataset

    with progress_bar("pages", err_console) as bar:
        task = bar.add_task(name, total=None, rows=0)

        def show(fetched: FetchProgress) -> None:
            bar.update(task, completed=fetched.pages_done, total=fetched.pages_total,
                       rows=fetched.rows)  # fmt: skip

        return run_dataset(store, config, name, trigger="manual", progress=show)


def history(
    name: Annotated[str, typer.Argument(help="The dataset.")],
    limit: Annotated[int, typer.Option("--limit", help="How many runs, newest first.")] = 20,
    json_: JsonFlag = False,
) -> None:
    """Show a dataset's runs, newest first."""
    from leadferry.service.runs import run_json

    with open_store() as store:
        tz = dataset_zone(store, name)
        runs = store.list_runs(name, limit=limit)
    if json_:
        print_json([run_json(r, tz) for r in runs])
        return
    if not runs:
        console.print(not_run_yet(name))
        return
    print_table(
        f"history of {name} (windows and times in {tz.key})",
        ["run", "trigger", "status", "window", "rows loaded", "started", "seconds", "error"],
        [
            (
                r.id,
                r.trigger,
                r.status,
                days_of(r.window_start, r.window_end, tz),
                f"{r.total_rows:,}",
                local(r.started_at, tz),
                f"{(r.finished_at - r.started_at).total_seconds():.1f}" if r.finished_at else "",
                r.error or "",
            )
            for r in runs
        ],
    )


def _warehouse(statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT) -> WarehouseReader:
    from leadferry.warehouse import open_warehouse

    return open_warehouse(settings(), statement_timeout=statement_timeout)


def not_run_yet(name: str) -> str:
    return f"{name} has not run yet: `leadferry run {name}` runs it now"


def _table_of(name: str, table: str | None) -> str | None:
    """The table to read of dataset *name*; None if the dataset has not run yet."""
    from leadferry.service.data import choose_table

    with open_store() as store:
        dataset = store.get_dataset(name)
        return choose_table(dataset, table) if dataset.last_run is not None else None


TableFlag = Annotated[
    str | None, typer.Option("--table", help="A table other than the report's main one.")
]


def preview(
    name: Annotated[str, typer.Argument(help="The dataset.")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many rows.")] = 10,
    table: TableFlag = None,
    json_: JsonFlag = False,
) -> None:
    """Show the first rows of a dataset's table in the warehouse."""
    chosen = _table_of(name, table)
    if chosen is None:
        if json_:
            print_json([])
        else:
            console.print(not_run_yet(name))
        return
    result = _warehouse().preview(name, chosen, limit)
    if json_:
        print_json(result.as_dicts())
        return
    with open_store() as store:
        tz = dataset_zone(store, name)
    print_table(f"{name}.{chosen} (times in {tz.key})", result.columns, result.rows, tz)


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT or EXPLAIN statement.")],
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.001, help="Seconds before the query is cancelled."),
    ] = DEFAULT_STATEMENT_TIMEOUT,
    json_: JsonFlag = False,
) -> None:
    """Run one read-only SQL statement against the warehouse (schemas are dataset names).

    It reads the warehouse's tables and nothing else: no file, URL or extension. It is
    cancelled after --timeout seconds, or as soon as a run waits to load."""
    result = _warehouse(timeout).query(sql)
    if json_:
        print_json(result.as_dicts())
    else:
        print_table(None, result.columns, result.rows)


def export(
    name: Annotated[str, typer.Argument(help="The dataset.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")],
    output: Annotated[str, typer.Option("--output", "-o", help="The file to write.")],
    table: TableFlag = None,
) -> None:
    """Export a dataset's table to CSV or Parquet.

    The file appears whole or not at all: rows go to a hidden file beside it, renamed once
    complete. An output that is a folder, device or pipe is refused."""
    if not output.strip():
        raise ConfigError("--output is empty: name the file to write")
    if output.endswith(("/", os.sep)):
        raise ConfigError(f"--output {output} names a folder: name a file to write")
    path = Path(output)
    chosen = _table_of(name, table)
    if chosen is None:
        raise ConfigError(not_run_yet(name))
    rows = _warehouse().export(name, chosen, fmt, path)
    console.print(f"wrote {rows:,} rows to {path}")
