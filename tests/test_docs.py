"""Every command has help text and appears in the user docs."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer._click import Command

from leadferry.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def commands() -> list[tuple[str, Command]]:
    """Every command as the words after `leadferry`, and its click command (loaded)."""
    root = typer.main.get_command(app)
    found = []
    for name in root.list_commands(None):
        command = root.get_command(None, name)
        subcommands = getattr(command, "commands", {})
        found += [(f"{name} {sub}", subcommands[sub]) for sub in subcommands] or [(name, command)]
    return found


@pytest.mark.parametrize(("name", "command"), commands(), ids=[name for name, _ in commands()])
def test_every_command_has_help_and_is_documented(name, command):
    assert (command.help or "").strip(), f"{name} has no help text"
    assert f"leadferry {name}" in DOCS, f"`leadferry {name}` is in no doc"
