"""The ``leadferry`` typer app: a thin layer that turns flags into calls of the core.

Every command lives in a module named after its noun; this module builds the app, sets up
logging and turns every error into one line on stderr and an exit status (2 for bad input, 1
for work that failed): the ones we raise on purpose say what to do, the others are named by
``failures``. Only ``--debug`` shows a traceback. The console entry point is
:func:`leadferry.cli.main`.

A command's module is imported when the command is first looked up (:data:`COMMANDS`), so
``leadferry run`` loads what running needs and not the web server, Celery or the other
commands' libraries; ``leadferry --help`` lists the commands from their one-line summaries
here and imports none of them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any, NamedTuple

import typer
from typer._click import Command

# typer's copy of click's errors: a bad flag is one line too (the help still shows with no args).
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from leadferry import __version__
from leadferry.cli.helptext import plain_help
from leadferry.cli.state import state
from leadferry.failures import error_line


class Entry(NamedTuple):
    module: str
    """The module under ``leadferry.cli`` that defines the command."""
    app: str | None
    """Its typer app of subcommands, or None: its ``register(app)`` adds the command."""
    summary: str
    """The command's line in ``leadferry --help`` (a test checks it against the command)."""
    long_lived: bool = False
    """It runs until stopped (a server, a worker): it ends the way Python always does, not by
    the quick exit of :func:`leadferry.cli.main` (a saving nobody notices after hours)."""


COMMANDS = {
    "run": Entry("data", None, "Update datasets now: fetch each one's window and load it with "
                 "its update method."),
    "history": Entry("data", None, "Show a dataset's runs, newest first."),
    "preview": Entry("data", None, "Show the first rows of a dataset's table in the warehouse."),
    "query": Entry("data", None, "Run one read-only SQL statement against the warehouse "
                   "(schemas are dataset names)."),
    "export": Entry("data", None, "Export a dataset's table to CSV or Parquet."),
    "backfill": Entry("backfill", None, "Load a past window into a dataset in chunks, without "
                      "changing its saved settings."),
    "serve": Entry("serve", None, "Serve the web Data Center and REST API, and run datasets on "
                   "their schedules, until stopped (Ctrl-C or SIGTERM).", long_lived=True),
    "worker": Entry("worker", None, "Run datasets sent by `leadferry serve --executor celery`, "
                    "until stopped (SIGTERM lets running runs finish).", long_lived=True),
    "window": Entry("tools", None, "Print the half-open window [start, end) a date selection "
                    "resolves to."),
    "reports": Entry("tools", None, "List every connector's credential fields, reports and "
                     "parameters."),
    "simulate": Entry("tools", None, "Serve a vendor API simulator on 127.0.0.1: simulate NAME "
                      "--port P [OPTIONS].", long_lived=True),
    "accounts": Entry("accounts", "app", "Add, test, rotate, rename and remove vendor accounts."),
    "datasets": Entry("datasets", "app", "Create, list, show, edit and remove datasets."),
    "users": Entry("users", "app", "Add users of the web UI and REST API, set their password "
                   "and role, remove them."),
    "tokens": Entry("users", "tokens_app", "Create, list and revoke API tokens for the REST API."),
    "secrets": Entry("secrets", "app", "The key that encrypts account secrets."),
}  # fmt: skip
"""Every command, in the order ``leadferry --help`` lists them."""


def is_long_lived(args: list[str]) -> bool:
    """Whether ``leadferry ARGS`` runs a command that runs until stopped (``serve`` ...)."""
    # The root's own options take no value: the first other word names the command.
    name = next((arg for arg in args if not arg.startswith("-")), None)
    return name in COMMANDS and COMMANDS[name].long_lived


def load_command(name: str) -> Command:
    """The click command *name*, its module imported now."""
    entry = COMMANDS[name]
    module = importlib.import_module(f"leadferry.cli.{entry.module}")
    holder = typer.Typer()
    if entry.app is None:
        module.register(holder)
    else:
        holder.add_typer(getattr(module, entry.app), name=name)
    return plain_help(typer.main.get_group(holder).commands[name])


class _Commands(MutableMapping[str, Command]):
    """The group's commands, each loaded on first use."""

    def __init__(self) -> None:
        self._loaded: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        raise TypeError("leadferry's commands are declared in COMMANDS")

    def __delitem__(self, name: str) -> None:
        raise TypeError("leadferry's commands are declared in COMMANDS")

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _Summaries(_Commands):
    """The commands as ``leadferry --help`` lists them: a name and a line, nothing imported."""

    def __getitem__(self, name: str) -> Command:
        return TyperCommand(name, help=COMMANDS[name].summary)


class _Group(TyperGroup):
    """Loads each command on first use; turns any error into one line on stderr and exit 2
    (bad input) or 1 (failure); only ``--debug`` shows a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)  # its own options: each command is labelled as it loads
        self.commands = _Commands()

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)  # typer's reads every command: that would load them all

    def format_help(self, ctx: Any, formatter: Any) -> None:
        commands, self.commands = self.commands, _Summaries()
        try:
            super().format_help(ctx, formatter)
        finally:
            self.commands = commands

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
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if state.debug:
                raise
            line, status = error_line(exc)
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
