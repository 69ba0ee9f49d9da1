"""Help pages in the plain words of a Unix manual: ``--days-back N`` and ``create NAME``.

typer labels every option with its Python type (``<bool>``, ``<int>``, ``<list[str]>``) and
wraps required arguments in braces (``{name}``): noise for someone who does not read Python.
Flags get no label, choices their values (``threads|celery``), whole numbers ``N``, other
numbers ``NUMBER``, everything else ``TEXT``, and arguments their name in capitals, in
brackets when optional.
"""

from __future__ import annotations

from typing import Any

from typer._click import Command, Context
from typer.core import TyperArgument, TyperOption


class _PlainArgument(TyperArgument):
    """An argument shown as ``NAME`` (required) or ``[NAME]``, with no type label."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


def _label(option: TyperOption) -> str:
    described = option.type_descriptor
    if described.is_choice:
        return "|".join(str(choice) for choice in described.choices or ())
    annotation: Any = described.annotation
    if annotation is int or annotation == list[int]:
        return "N"
    if annotation is float:
        return "NUMBER"
    return "TEXT"


def plain_help(command: Command) -> Command:
    """Give *command* and every subcommand plain labels; return it."""
    # --help is made on demand, then kept: make it now, to label it too.
    help_option = command.get_help_option(Context(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if isinstance(param, TyperArgument) and not isinstance(param, _PlainArgument):
            param.__class__ = _PlainArgument
            param.metavar = param.metavar or (param.name or "").upper()
        elif isinstance(param, TyperOption) and param.metavar is None:
            flag = param.is_flag or param.count
            param.metavar = "" if flag else _label(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command
