"""The ``leadferry`` typer app: a thin layer that turns flags into calls of the core.

Every command lives in a module named after its noun; this module builds the app, sets up
logging and turns every error into one line on stderr and an exit status (2 for bad input, 1
for work that failed): the ones we raise on purpose say what to do, the others are named by
``failures``. Only ``--debug`` shows a traceback. The console entry point is
:func:`leadferry.cli.main`.
"""

from __future__ import annotations

import logging
from typing import Any

import typer

# typer's copy of click's errors: a bad flag is one line too (the help still shows with no args).
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup
from typer.exceptions import TyperException

from leadferry import __version__
from leadferry.cli import (
    accounts,
    backfill,
    data,
    datasets,
    failures,
    secrets,
    serve,
    tools,
    users,
    worker,
)
from leadferry.cli.common import state
from leadferry.cli.helptext import plain_help
from leadferry.errors import ConfigError, LeadferryError
from leadferry.scrub import scrub


class _Group(TyperGroup):
    """Turns any error into one line on stderr and exit 2 (bad input) or 1 (failure); only
    ``--debug`` shows a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            if state.debug:
                raise
            hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            typer.echo(f"error: {exc.format_message()}{hint}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except LeadferryError as exc:
            if state.debug:
                raise
            typer.echo(f"error: {scrub(str(exc))}", err=True)
            raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if state.debug:
                raise
            line, status = failures.describe(exc)
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(status) from None


class _DltToDebug(logging.Handler):
    """dlt gives its logger a console handler of its own unless the logger has one already: this
    one takes its place and passes dlt's records on as leadferry DEBUG lines (shown by -vv)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("leadferry.dlt").debug("%s", record.getMessage())


app = typer.Typer(
    name="leadferry",
    cls=_Group,
    help="Keep lead-management and call-tracking data fresh in your own warehouse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(accounts.app, name="accounts")
app.add_typer(datasets.app, name="datasets")
app.add_typer(users.app, name="users")
app.add_typer(users.tokens_app, name="tokens")
app.add_typer(secrets.app, name="secrets")
data.register(app)
backfill.register(app)
serve.register(app, datasets.app)
worker.register(app)
tools.register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"leadferry {__version__}")
        raise typer.Exit()


@app.callback()
def configure(
    _version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v for INFO, -vv DEBUG."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """Keep lead-management and call-tracking data fresh in your own warehouse."""
    state.debug = debug
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per HTTP request is noise next to our own per-page lines.
    logging.getLogger("httpx2").setLevel(max(level, logging.WARNING))
    dlt_logger = logging.getLogger("dlt")
    if not any(isinstance(handler, _DltToDebug) for handler in dlt_logger.handlers):
        dlt_logger.addHandler(_DltToDebug())
