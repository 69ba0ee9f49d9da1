"""Commands about the product itself: window, reports, and the vendor simulators."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError

from leadferry.cli.common import (
    DateFlag,
    DaysBackFlag,
    FromDaysBackFlag,
    FromFlag,
    ToDaysBackFlag,
    ToFlag,
    console,
    date_selection,
    parse_today,
    print_json,
    print_table,
)
from leadferry.cli.helptext import plain_help
from leadferry.clock import utc_now
from leadferry.dates import today_in, zone
from leadferry.errors import ConfigError, NotFoundError


def register(app: typer.Typer) -> None:
    app.command("window")(window)
    app.command("reports")(reports)
    app.command(
        "simulate",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(simulate)


def window(
    date: DateFlag = None,
    days_back: DaysBackFlag = None,
    from_date: FromFlag = None,
    from_days_back: FromDaysBackFlag = None,
    to_date: ToFlag = None,
    to_days_back: ToDaysBackFlag = None,
    tz: Annotated[str, typer.Option("--tz", help="Time zone of the days.")] = "UTC",
    today: Annotated[
        str | None, typer.Option("--today", help="Pretend today is this day, YYYY-MM-DD.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the half-open window [start, end) a date selection resolves to."""
    selection = date_selection(date, days_back, from_date, from_days_back, to_date, to_days_back)
    zone(tz)
    resolved = selection.resolve(tz, parse_today(today) or today_in(tz, utc_now()))
    if json_:
        print_json(resolved.as_json())
    else:
        console.print(f"{selection.describe()} in {tz}: {resolved}")


def reports(
    connector: Annotated[
        str | None, typer.Option("--connector", "-c", help="Only this connector.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every connector's credential fields, reports and parameters."""
    from leadferry.connectors import CONNECTORS, get_connector

    chosen = [get_connector(connector)] if connector else list(CONNECTORS.values())
    if json_:
        print_json([_describe(c) for c in chosen])
        return
    for item in chosen:
        fields = ", ".join(
            f"{f.id}{' (secret)' if f.secret else ''}{'' if f.required else ' [optional]'}"
            for f in item.fields
        )
        print_table(
            f"{item.label} ({item.name}): {fields}",
            ["report", "label", "parameters", "dates", "tables"],
            [
                (
                    r.slug,
                    r.label,
                    ", ".join(
                        f"{p.id} ({p.type.__name__}{', required' if p.required else ''})"
                        for p in r.params
                    ),
                    "yes" if r.dated else "no",
                    ", ".join(t.name for t in r.tables),
                )
                for r in item.reports
            ],
        )


def _describe(connector: Any) -> dict[str, Any]:
    return {
        "name": connector.name,
        "label": connector.label,
        "default_timezone": connector.default_timezone(),
        "fields": [
            {
                "id": f.id,
                "label": f.label,
                "secret": f.secret,
                "required": f.required,
                "default": f.default,
                "advanced": f.advanced,
                "help": f.help,
            }
            for f in connector.fields
        ],
        "reports": [
            {
                "slug": r.slug,
                "label": r.label,
                "description": r.description,
                "dated": r.dated,
                "tables": [t.name for t in r.tables],
                "merge_key": list(r.merge_key),
                "params": [
                    {
                        "id": p.id,
                        "label": p.label,
                        "type": p.type.__name__,
                        "required": p.required,
                        "help": p.help,
                    }
                    for p in r.params
                ],
            }
            for r in connector.reports
        ],
    }


# -- simulators: each module's Settings becomes the options of its command ---------------------


def simulate(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The simulator: leadexec, ...")] = None,
) -> None:
    """Serve a vendor API simulator on 127.0.0.1: simulate NAME --port P [OPTIONS]."""
    from leadferry.simulators import SIMULATORS

    if name is None or name in ("--help", "-h"):
        console.print(
            "usage: leadferry simulate NAME --port P [OPTIONS]; NAME is one of: "
            + ", ".join(SIMULATORS)
            + " (leadferry simulate NAME --help for options)"
        )
        return
    parsed = simulator_app(name, ctx.args)
    if parsed is not None:
        _serve(name, *parsed)


def simulator_app(name: str, args: list[str]) -> tuple[Any, str, int] | None:
    """The app of simulator *name* as ``simulate NAME ARGS`` asks for it, with the host and
    port to serve it on; None when *args* asked for the help (printed).

    Raises:
        NotFoundError: no such simulator; ConfigError: an option out of bounds (named).
    """
    from leadferry.simulators import SIMULATORS

    if name not in SIMULATORS:
        raise NotFoundError(f"no simulator named {name!r} (known: {', '.join(SIMULATORS)})")
    module = SIMULATORS[name]
    given: dict[str, Any] = {}
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    sub.command(help=(module.__doc__ or "").strip().splitlines()[0])(
        _serve_command(module, given.update)
    )
    command = plain_help(typer.main.get_command(sub))
    command.main(args=args, prog_name=f"leadferry simulate {name}", standalone_mode=False)
    if not given:
        return None
    host, port = given.pop("host"), given.pop("port")
    try:
        config = module.Settings(**{k: v for k, v in given.items() if v is not None and v != []})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "options"
        raise ConfigError(f"{where}: {error['msg']}") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError("simulators only listen on loopback (127.0.0.1, localhost or ::1)")
    return module.create_app(config), host, port


def _serve_command(module: Any, take: Any) -> Any:
    """A function whose signature typer turns into --port, --host and one flag per setting;
    called, it gives the values to *take*."""
    model: type[BaseModel] = module.Settings
    parameters = [
        inspect.Parameter(
            "port",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[int, typer.Option("--port", help="Port to listen on.")],
        ),
        inspect.Parameter(
            "host",
            inspect.Parameter.KEYWORD_ONLY,
            default="127.0.0.1",
            annotation=Annotated[str, typer.Option("--host", help="Loopback address.")],
        ),
    ]
    for field_name, info in model.model_fields.items():
        annotation = info.annotation
        default = info.get_default(call_default_factory=True)
        parameters.append(
            inspect.Parameter(
                field_name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    annotation | None,
                    typer.Option(
                        f"--{field_name.replace('_', '-')}",
                        help=f"{info.description} (default: {default})",
                    ),
                ],
            )
        )

    def serve(**values: Any) -> None:
        take(values)

    serve.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return serve


def _serve(name: str, app: Any, host: str, port: int) -> None:
    import uvicorn

    console.print(f"{name} simulator on http://{host}:{port}/", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
