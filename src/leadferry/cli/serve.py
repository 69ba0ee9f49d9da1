"""``leadferry datasets schedule|resume`` and ``leadferry serve``: keeping datasets fresh."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from leadferry.cli.common import (
    console,
    dataset_zone,
    local,
    open_store,
    print_json,
    settings,
)
from leadferry.clock import utc_now
from leadferry.errors import ConfigError

if TYPE_CHECKING:
    from leadferry.clock import Clock
    from leadferry.executors import CeleryExecutor
    from leadferry.settings import Settings

ClockOrigin = Annotated[
    str | None, typer.Option("--clock-origin", hidden=True, help="Testing: start time.")
]
ClockSpeed = Annotated[
    float, typer.Option("--clock-speed", hidden=True, help="Testing: time runs N× faster.")
]
ClockStarted = Annotated[
    str | None,
    typer.Option("--clock-started", hidden=True, help="Testing: real time the origin is read."),
]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _instant(value: str, flag: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag}: {value!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{flag}: {value!r} needs a UTC offset, e.g. 2026-11-23T06:00:00+00:00")
    return moment


def test_clock(origin: str | None, speed: float, started: str | None) -> Clock:
    """The clock of ``--clock-origin``, ``--clock-speed`` and ``--clock-started`` (real time)."""
    from leadferry.scheduler import scaled_clock

    return scaled_clock(
        _instant(origin, "--clock-origin") if origin else utc_now(),
        speed,
        _instant(started, "--clock-started") if started else None,
    )


def schedule(
    name: Annotated[str, typer.Argument(help="The dataset to schedule.")],
    manual: Annotated[bool, typer.Option("--manual", help="Only Run Now.")] = False,
    every: Annotated[str | None, typer.Option("--every", help="15m, 2h or 1d.")] = None,
    daily: Annotated[str | None, typer.Option("--daily", help="Every day at HH:MM.")] = None,
    weekdays: Annotated[
        str | None, typer.Option("--weekdays", help="Monday to Friday at HH:MM.")
    ] = None,
    weekly: Annotated[str | None, typer.Option("--weekly", help="MON,THU@HH:MM.")] = None,
    monthly: Annotated[
        str | None, typer.Option("--monthly", help="DAY@HH:MM; past a month's end: its last day.")
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="A cron expression.")] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="An RRULE, e.g. FREQ=MONTHLY;BYDAY=2SU,4SU.")
    ] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Zone the times are in (UTC).")] = None,
    active_hours: Annotated[
        str | None, typer.Option("--active-hours", help="HH-HH: run only then (end excluded).")
    ] = None,
    start_at: Annotated[
        str | None, typer.Option("--start-at", help="No run before this ISO time.")
    ] = None,
    retry_every: Annotated[
        int | None, typer.Option("--retry-every", help="Minutes between retries.")
    ] = None,
    retries: Annotated[int | None, typer.Option("--retries", help="Retries at most.")] = None,
    no_retry: Annotated[bool, typer.Option("--no-retry", help="Do not retry.")] = False,
    when_failing: Annotated[
        str | None,
        typer.Option("--when-failing", help="After the last retry: keep the schedule, or pause."),
    ] = None,
    stale_after: Annotated[
        int | None, typer.Option("--stale-after", help="Alert after N minutes without success.")
    ] = None,
    alert_webhook: Annotated[
        str | None, typer.Option("--alert-webhook", help="POST alerts here as JSON.")
    ] = None,
    alert_email: Annotated[
        list[str] | None, typer.Option("--alert-email", help="E-mail alerts here (repeatable).")
    ] = None,
    at_now: Annotated[
        str | None, typer.Option("--now", help="Pretend it is this ISO time (preview).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Set a dataset's schedule, retries and alerts (what is not given stays); print its next
    five runs."""
    from leadferry.schedule import Schedule
    from leadferry.service.datasets import schedule_changes, schedule_text, set_schedule

    kinds = (every, daily, weekdays, weekly, monthly, cron, rule)
    plan = None
    if manual or any(kind is not None for kind in kinds):
        plan = Schedule.from_flags(
            manual=manual,
            every=every,
            daily=daily,
            weekdays=weekdays,
            weekly=weekly,
            monthly=monthly,
            cron=cron,
            rule=rule,
            tz=tz,
            active_hours=active_hours,
            start_at=start_at,
        )
    elif tz is not None or active_hours is not None or start_at is not None:
        raise ConfigError(
            "--tz, --active-hours and --start-at describe a schedule: give it too "
            "(--manual, --every, --daily, --weekdays, --weekly, --monthly, --cron or --rule)"
        )
    changes = schedule_changes(
        plan,
        retry_every=retry_every,
        retries=retries,
        no_retry=no_retry,
        when_failing=when_failing,
        stale_after=stale_after,
        alert_webhook=alert_webhook,
        alert_emails=alert_email,
    )
    moment = _instant(at_now, "--now") if at_now else utc_now()
    with open_store() as store:
        upcoming = set_schedule(store, name, changes, moment)
        described = schedule_text(store.get_dataset(name))
    if json_:
        print_json({"next_runs": [slot.isoformat() for slot in upcoming]})
        return
    console.print(f"{name}: {described}; next runs:", highlight=False)
    for slot in upcoming:
        console.print(f"  {local(slot, slot.tzinfo)}", highlight=False)


def resume(name: Annotated[str, typer.Argument(help="The failing dataset.")]) -> None:
    """Clear a dataset's failing mark and put it back on its schedule."""
    from leadferry.scheduler import resume as resume_dataset

    with open_store() as store:
        upcoming = resume_dataset(store, name, utc_now())
        tz = dataset_zone(store, name)
    console.print(f"{name}: resumed; next run {local(upcoming, tz) if upcoming else 'manual'}")


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address the web UI and API listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")
    ] = 8700,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Runs at once (thread executor).")
    ] = 4,
    executor: Annotated[
        Literal["threads", "celery"],
        typer.Option(
            "--executor",
            help="Where runs run: threads of this process, or Celery workers "
            "(`leadferry worker`, LEADFERRY_BROKER_URL).",
        ),
    ] = "threads",
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated addresses (or networks) of reverse proxies whose "
            "X-Forwarded-For and X-Forwarded-Proto are believed; default: none.",
        ),
    ] = None,
    tick: Annotated[float, typer.Option("--tick", help="Seconds between looks.")] = 5.0,
    clock_origin: ClockOrigin = None,
    clock_speed: ClockSpeed = 1.0,
    clock_started: ClockStarted = None,
) -> None:
    """Serve the web Data Center and REST API, and run datasets on their schedules, until
    stopped (Ctrl-C or SIGTERM)."""
    import socket

    import uvicorn

    from leadferry.scheduler import Scheduler
    from leadferry.store import Store
    from leadferry.web import create_app

    clock = test_clock(clock_origin, clock_speed, clock_started)
    config = settings()
    runner = celery_executor(config) if executor == "celery" else None
    store = Store.open(config)
    try:
        if store.user_count() == 0:
            raise ConfigError(
                "no users yet: create the first admin with "
                "`leadferry users add NAME --role admin`, then start serve again"
            )
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
        except OSError as exc:
            listener.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        scheduler = Scheduler(store, config, clock=clock, workers=workers, executor=runner)
        app = create_app(config, store, scheduler=scheduler, clock=clock)
        # Proxy headers name the client the login throttle counts: believed only from the
        # proxies named (uvicorn's own default would believe any local process).
        web = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan="off",
                access_log=False,
                proxy_headers=bool(forwarded_allow_ips),
                forwarded_allow_ips=forwarded_allow_ips or [],
            )
        )
        # Off the main thread uvicorn leaves signals alone: the handlers below stop both.
        web_thread = threading.Thread(
            target=web.run, kwargs={"sockets": [listener]}, name="leadferry-web"
        )
        stop = threading.Event()

        def request_stop(signum: int, _frame: object) -> None:
            console.print(f"stopping ({signal.Signals(signum).name}): letting running work finish")
            stop.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        bound_host, bound_port = listener.getsockname()[:2]
        web_thread.start()
        where = f"{workers} workers" if runner is None else f"runs sent to queue {config.queue}"
        console.print(
            f"leadferry serve: http://{bound_host}:{bound_port}/ ; {where}, "
            f"looking every {tick:g}s",
            highlight=False,
        )
        try:
            scheduler.serve(stop, tick)
        finally:
            web.should_exit = True
            web_thread.join()
            listener.close()
    finally:
        store.close()


def celery_executor(config: Settings) -> CeleryExecutor:
    """The Celery executor, once this node is known to share state and reach the broker."""
    from leadferry.executors import CeleryExecutor
    from leadferry.worker import check_broker, check_shared

    check_shared(config)
    runner = CeleryExecutor(config)
    check_broker(runner.app)
    return runner
