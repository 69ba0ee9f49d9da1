"""The ``leadferry`` command: :func:`main` runs the typer app of :mod:`leadferry.cli.root`.

This module imports nothing heavy, so that ``leadferry --version`` answers without loading the
app; ``leadferry.cli.app`` is the app itself, loaded on first use (tests run it with typer's
CliRunner).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from leadferry.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point: run the command, then leave without the interpreter's teardown.

    By the time a command returns, it has closed the store and the warehouse and written its
    output; what Python's own shutdown does after that is free every module and object one by
    one (about 0.6 s of CPU after a run, with dlt, SQLAlchemy and pyarrow loaded), which nobody
    sees. So once no other thread is left, the exit handlers run (logging flushes its handlers
    there), the standard streams are flushed, and the process ends at once.
    """
    if sys.argv[1:] == ["--version"]:
        from leadferry import __version__

        sys.stdout.write(f"leadferry {__version__}\n")
        return
    from leadferry.cli.root import app

    try:
        app(prog_name="leadferry")
        status: Any = 0
    except SystemExit as exc:
        status = exc.code
    _leave(status)


def _leave(status: Any) -> None:
    """Exit with *status* at once if nothing is left to wait for; else the usual way."""
    code = 0 if status is None else status
    waiting = [
        t for t in threading.enumerate() if not t.daemon and t is not threading.current_thread()
    ]
    if not isinstance(code, int) or waiting:
        sys.exit(status)  # a message to print, or threads Python must wait for
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: let Python report it as it always does
        sys.exit(status)
    os._exit(code)
