"""``leadferry worker``: run datasets from the Celery queue that ``serve --executor celery``
fills."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from typing import Annotated

import typer

from leadferry.cli.common import console, settings
from leadferry.cli.serve import ClockOrigin, ClockSpeed, ClockStarted, test_clock
from leadferry.cli.state import state


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, max=64, help="Runs at once in each process."),
    ] = 4,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Processes of this worker, each running --concurrency runs at once "
            "(default: one per core).",
        ),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            help="Comma-separated queues to take runs from (default: "
            "LEADFERRY_QUEUE, 'leadferry').",
        ),
    ] = None,  # fmt: skip
    name: Annotated[
        str | None,
        typer.Option("--name", help="Node name in the history (default leadferry-PID@HOST)."),
    ] = None,
    clock_origin: ClockOrigin = None,
    clock_speed: ClockSpeed = 1.0,
    clock_started: ClockStarted = None,
    parent: Annotated[
        int | None,
        typer.Option("--parent", hidden=True, help="The supervising worker's pid (internal)."),
    ] = None,
) -> None:
    """Run datasets sent by `leadferry serve --executor celery`, until stopped (SIGTERM lets
    running runs finish)."""
    from leadferry.jobs import Heartbeat, JobContext
    from leadferry.store import Store
    from leadferry.worker import (
        celery_app,
        check_broker,
        check_shared,
        default_processes,
        die_with_parent,
        node_name,
        process_names,
        register_run_task,
        run_worker,
        supervise,
    )

    if parent is not None:
        die_with_parent(parent)
    config = settings()
    check_shared(config)
    app = celery_app(config)
    check_broker(app)
    names = [q.strip() for q in (queues or config.queue).split(",") if q.strip()]
    count = default_processes() if processes is None else processes
    if count > 1:
        app.close()
        console.print(
            f"leadferry worker: {count} processes, {concurrency} at once in each, "
            f"from {', '.join(names)}",
            highlight=False,
        )
        if clock_origin and not clock_started:  # every process reads the same test clock
            clock_started = dt.datetime.now(dt.UTC).isoformat()
        options = ["--concurrency", str(concurrency), "--queues", ",".join(names),
                   "--clock-speed", repr(clock_speed)]  # fmt: skip
        for flag, value in (("--clock-origin", clock_origin), ("--clock-started", clock_started)):
            options += [flag, value] if value else []
        code = supervise([_child(child, options) for child in process_names(name, count)])
        if code:
            raise typer.Exit(code)
        return
    node = node_name(name)
    clock = test_clock(clock_origin, clock_speed, clock_started)
    with Store.open(config) as store:
        register_run_task(app, JobContext(store, config, node, clock))
        console.print(
            f"leadferry worker {node}: {concurrency} at once from {', '.join(names)}",
            highlight=False,
        )
        with Heartbeat(store, config, node):
            code = run_worker(app, node, concurrency, names)
    if code:
        raise typer.Exit(code)


def _child(name: str | None, options: list[str]) -> list[str]:
    """The command of one process of this worker: ``leadferry worker --processes 1`` with this
    one's global options (verbosity, --debug) and *options*, named *name*."""
    level = logging.getLogger().getEffectiveLevel()
    verbose = {logging.INFO: ["-v"], logging.DEBUG: ["-vv"]}.get(level, [])
    debug = ["--debug"] if state.debug else []
    named = ["--name", name] if name else []
    return [sys.executable, "-m", "leadferry", *verbose, *debug, "worker", "--processes", "1",
            "--parent", str(os.getpid()), *options, *named]  # fmt: skip
