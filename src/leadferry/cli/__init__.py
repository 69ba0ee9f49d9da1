"""The ``leadferry`` command: a thin layer that turns flags into calls of the core.

Every command lives in a module named after its noun; this module builds the app, sets up
logging and turns the errors we raise on purpose into one line on stderr and an exit status
(2 for bad input, 1 for work that failed).
"""

from __future__ import annotations

import logging
from typing import Any

import typer
from typer.core import TyperGroup

from leadferry.cli import accounts, backfill, data, datasets, serve, tools, users, worker
from leadferry.cli.common import state
from leadferry.errors import ConfigError, LeadferryError


class _Group(TyperGroup):
    """Turns a LeadferryError into one line on stderr and exit 2 (bad input) or 1 (failure)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LeadferryError as exc:
            if state.debug:
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None


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
data.register(app)
backfill.register(app)
serve.register(app, datasets.app)
worker.register(app)
tools.register(app)


@app.callback()
def configure(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v for INFO, -vv DEBUG."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """Keep lead-management and call-tracking data fresh in your own warehouse."""
    state.debug = debug
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per HTTP request is noise next to our own per-page lines.
    logging.getLogger("httpx2").setLevel(max(level, logging.WARNING))


def main() -> None:
    """Console entry point."""
    app(prog_name="leadferry")
