"""``leadferry worker``: run datasets from the Celery queue that ``serve --executor celery``
fills."""

from __future__ import annotations

from typing import Annotated

import typer

from leadferry.cli.common import console, settings
from leadferry.cli.serve import ClockOrigin, ClockSpeed, ClockStarted, test_clock


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Runs at once in this worker.")
    ] = 4,
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
) -> None:
    """Run datasets sent by `leadferry serve --executor celery`, until stopped (SIGTERM lets
    running runs finish)."""
    from leadferry.jobs import Heartbeat, JobContext
    from leadferry.store import Store
    from leadferry.worker import (
        celery_app,
        check_broker,
        check_shared,
        node_name,
        register_run_task,
        run_worker,
    )

    config = settings()
    check_shared(config)
    app = celery_app(config)
    check_broker(app)
    node = node_name(name)
    names = [q.strip() for q in (queues or config.queue).split(",") if q.strip()]
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
