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

    By the time a one-shot command returns, it has closed the store and the warehouse and
    written its output; what Python's own shutdown does after that is free every module and
    object one by one (about 0.3 to 0.6 CPU-s after a run, with dlt, SQLAlchemy and pyarrow
    loaded), which nobody sees. So once no other thread is left, the exit handlers run, the
    standard streams are flushed, and the process ends at once (:func:`_leave`). Commands that
    run until stopped (``serve``, ``worker``, ``simulate``) and errors shown with ``--debug``
    (the exception leaves :func:`main`) end the usual way.
    """
    if sys.argv[1:] == ["--version"]:
        from leadferry import __version__

        sys.stdout.write(f"leadferry {__version__}\n")
        return
    from leadferry.cli.root import app, is_long_lived

    try:
        app(prog_name="leadferry")
        status: Any = 0
    except SystemExit as exc:
        status = exc.code
    if is_long_lived(sys.argv[1:]):
        sys.exit(status)
    _leave(status)


def _leave(status: Any) -> None:
    """Exit with *status* at once if nothing is left to wait for; else the usual way.

    What is skipped is only the teardown: every exit handler still runs, in order, here
    (``atexit``): logging's flush and close of its handlers, ``weakref.finalize`` (temporary
    folders), multiprocessing's, DuckDB's own clean-up, dlt's telemetry stop, coverage's save
    when a test measures it. SQLAlchemy registers none; Celery registers its own in
    ``leadferry worker`` only, which ends the usual way. Left out are the
    ``__del__`` of objects still alive (nothing durable hangs on them: the store's writes are
    committed and its engine disposed, the warehouse detached with a checkpoint, every file
    written is closed before its rename) and ``threading``'s own exit hooks, which only join
    threads: with a thread still running the process ends the usual way.
    """
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
