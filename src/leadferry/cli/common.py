"""What the command modules share: settings, the store, date flags, output helpers."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TextIO
from zoneinfo import ZoneInfo

import typer

from leadferry.dates import DateSelection, parse_day, zone
from leadferry.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from leadferry.settings import Settings
    from leadferry.store import Store


class _LazyConsole:
    """rich's Console, made when first needed. Plain text to a pipe or a file needs none of it:
    it is written as it is, each line whole (rich would fold it at 80 columns there), so a
    command that prints JSON or a line of its outcome (what scripts and most tests read) loads no
    rich at all; tables, markup and anything shown in a terminal go through rich."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def stream(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout

    def is_piped(self) -> bool:
        """Whether what is printed goes to a pipe or a file: rich draws no bar nor colour there."""
        return not self.stream().isatty()

    def print(self, *objects: Any, **options: Any) -> None:
        if self.is_piped() and _plain_text(objects, options):
            self.stream().write(" ".join(objects) + "\n")
        else:
            self.real().print(*objects, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


_PLAIN_OPTIONS = {"highlight", "markup", "soft_wrap"}
"""Options of rich's print that change nothing in plain text written to a pipe."""


def _plain_text(objects: Sequence[Any], options: dict[str, Any]) -> bool:
    """Whether rich would write *objects* to a pipe as they are: strings without markup."""
    if not all(isinstance(part, str) for part in objects) or not set(options) <= _PLAIN_OPTIONS:
        return False
    return options.get("markup") is False or not any("[" in part for part in objects)


console = _LazyConsole(stderr=False)
err_console = _LazyConsole(stderr=True)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def read_secret(label: str, env_var: str | None = None, *, confirm: bool = False) -> str:
    """A secret: asked for without echo in a terminal (twice when *confirm*), else the next
    line of standard input, so that ``echo KEY | leadferry ...`` works in scripts.

    Raises:
        ConfigError: standard input has no line left for it (the message names *env_var*,
            where the secret could come from instead).
    """
    if stdin_is_terminal():
        return str(typer.prompt(label, hide_input=True, confirmation_prompt=confirm))
    line = sys.stdin.readline()
    if not line:
        instead = f"set {env_var}, " if env_var else ""
        raise ConfigError(
            f"no {label} given: {instead}give it on a line of standard input, or run in a "
            "terminal to be asked for it"
        )
    return line.removesuffix("\n").removesuffix("\r")


def settings() -> Settings:
    from leadferry.settings import Settings  # pydantic-settings: not for --help

    return Settings()


@contextlib.contextmanager
def open_store() -> Iterator[Store]:
    from leadferry.store import Store

    store = Store.open(settings())
    try:
        yield store
    finally:
        store.close()


# Date flags: the same six options on every command that takes a selection.
DateFlag = Annotated[
    str | None,
    typer.Option("--date", help="One specific day, YYYY-MM-DD.", rich_help_panel="Dates"),
]
DaysBackFlag = Annotated[
    int | None,
    typer.Option(
        "--days-back",
        help="The last N days up to yesterday (0 = today).",
        rich_help_panel="Dates",
    ),
]
FromFlag = Annotated[
    str | None,
    typer.Option("--from", help="Range start day, YYYY-MM-DD.", rich_help_panel="Dates"),
]
FromDaysBackFlag = Annotated[
    int | None,
    typer.Option(
        "--from-days-back", help="Range start, N days before today.", rich_help_panel="Dates"
    ),
]
ToFlag = Annotated[
    str | None,
    typer.Option("--to", help="Range end day, included, YYYY-MM-DD.", rich_help_panel="Dates"),
]
ToDaysBackFlag = Annotated[
    int | None,
    typer.Option(
        "--to-days-back",
        help="Range end, N days before today (included).",
        rich_help_panel="Dates",
    ),
]


def date_selection(
    date: str | None,
    days_back: int | None,
    from_date: str | None,
    from_days_back: int | None,
    to_date: str | None,
    to_days_back: int | None,
) -> DateSelection:
    """The selection the date flags describe (no flag at all = Default, yesterday)."""
    return DateSelection.parse(
        {
            "date": date,
            "days_back": days_back,
            "from_date": from_date,
            "from_days_back": from_days_back,
            "to_date": to_date,
            "to_days_back": to_days_back,
        }
    )


def any_date_flag(*values: Any) -> bool:
    return any(value is not None for value in values)


def parse_today(value: str | None) -> dt.date | None:
    return parse_day(value, "--today") if value else None


def key_values(pairs: Sequence[str], flag: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``; ConfigError names a malformed pair."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {pair!r}: expected NAME=VALUE")
        result[key.strip()] = value
    return result


class _NoBar:
    """The bar of a stream that is no terminal, where rich would draw nothing: rich not loaded."""

    def __init__(self, target: _LazyConsole) -> None:
        self.console = target

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **fields: Any) -> int:
        return 0

    def update(self, *args: Any, **fields: Any) -> None:
        return None


def progress_bar(unit: str, target: _LazyConsole) -> Progress | _NoBar:
    """A transient bar counting *unit* (pages, chunks) and rows, on *target* when a terminal."""
    if target.is_piped():
        return _NoBar(target)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=target.real(),
        transient=True,
        disable=not target.is_terminal,
    )


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def local(value: dt.datetime | None, tz: dt.tzinfo | None) -> str:
    """A moment as people read it on one clock, the dataset's: ``2026-11-23 12:00:05 PST``.

    (``--json`` gives ISO 8601 with the offset instead.)"""
    if value is None:
        return ""
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    tz: ZoneInfo | None = None,
) -> None:
    """Print *rows* under *columns*; aware times in the cells are shown in *tz* when given."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")

    def text(cell: Any) -> str:
        if cell is None:
            return ""
        if tz is not None and isinstance(cell, dt.datetime) and cell.tzinfo is not None:
            return local(cell, tz)
        return str(cell)

    for row in rows:
        table.add_row(*(text(cell) for cell in row))
    console.print(table)


def dataset_zone(store: Store, name: str) -> ZoneInfo:
    """The time zone a dataset's windows are in."""
    from leadferry.service.datasets import dataset_zone as zone_of

    return zone(zone_of(store, store.get_dataset(name)))
