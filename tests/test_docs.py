"""Every command has help text and appears in the user docs."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from leadferry.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def commands() -> list[tuple[str, typer.models.CommandInfo]]:
    found = [(info.name or info.callback.__name__, info) for info in app.registered_commands]
    for group in app.registered_groups:
        found += [
            (f"{group.name} {info.name or info.callback.__name__}", info)
            for info in group.typer_instance.registered_commands
        ]
    return found


@pytest.mark.parametrize(("name", "info"), commands(), ids=[name for name, _ in commands()])
def test_every_command_has_help_and_is_documented(name, info):
    assert (info.help or info.callback.__doc__ or "").strip(), f"{name} has no help text"
    assert f"leadferry {name}" in DOCS, f"`leadferry {name}` is in no doc"
