"""Every `$ leadferry ...` line of README.md and docs/*.md works as written.

Each code block is a session: its `$ ` lines run in order against a fresh home, through the real
CLI in-process. `leadferry simulate NAME --port P ... &` serves that simulator on a free loopback
port (later lines reach it at that port instead of P), `echo X |` and `printf '%s\\n' X Y |` feed
standard input, `VAR=value` prefixes set the environment. The setup lines the docs print
(`source .venv/bin/activate`, `export LEADFERRY_HOME=...`) are what the test does for each
block. Lines of other programs (curl against a running serve) are not run here.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadferry.cli import app
from leadferry.cli.tools import simulator_app
from tests.conftest import serve_on_loopback

ROOT = Path(__file__).resolve().parent.parent
ELSEWHERE = {
    # The Acme connector is a separate package: tests/e2e/test_plugin_e2e.py installs it into an
    # environment of its own and runs these steps there.
    "docs/connectors.md",
}
SETUP = re.compile(r"^(source \.venv/bin/activate|export LEADFERRY_HOME=\S+)$")


def sessions() -> list[tuple[str, list[str]]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        name = str(path.relative_to(ROOT))
        blocks = re.findall(r"^```[^\n]*\n(.*?)^```", path.read_text(), re.S | re.M)
        for number, block in enumerate(blocks, 1):
            commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
            if any(" leadferry " in f" {c} " for c in commands) and name not in ELSEWHERE:
                found.append((f"{name} block {number}", commands))
    return found


def split(command: str) -> tuple[dict[str, str], str | None, list[str], bool]:
    """(environment, standard input, leadferry's arguments, in the background?)"""
    words = shlex.split(command, comments=True)
    stdin = None
    if "|" in words:
        bar = words.index("|")
        feeder, words = words[:bar], words[bar + 1 :]
        values = feeder[1:] if feeder[0] == "echo" else feeder[2:]
        assert feeder[0] in ("echo", "printf"), command
        stdin = "".join(f"{value}\n" for value in values)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    background = words[-1] == "&"
    if background:
        words.pop()
    return env, stdin, words, background


@pytest.mark.parametrize(("where", "commands"), sessions(), ids=[w for w, _ in sessions()])
def test_every_documented_command_runs_as_written(where, commands, settings):
    runner = CliRunner()
    ports: dict[str, str] = {}
    ran = 0
    with contextlib.ExitStack() as servers:
        for written in commands:
            if SETUP.match(written):
                assert (ROOT / ".venv/bin/activate").exists() or "export" in written
                continue
            command = written
            for documented, real in ports.items():
                command = command.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{real}")
            env, stdin, words, background = split(command)
            if words[0] != "leadferry":
                continue
            if background:
                assert words[1] == "simulate", f"{where}: only simulators run in the background"
                served = simulator_app(words[2], words[3:])
                assert served is not None, written
                url = servers.enter_context(serve_on_loopback(served[0]))
                ports[str(served[2])] = url.rsplit(":", 1)[1]
                continue
            result = runner.invoke(app, words[1:], env=env, input=stdin or "")
            assert result.exit_code == 0, f"{where}: `{written}` failed:\n{result.output}"
            ran += 1
    assert ran, f"{where}: no leadferry command ran"
