"""The backfill command: load a past window in chunks, resumable, settings untouched."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from leadferry.cli.common import console, open_store, progress_bar, settings
from leadferry.clock import utc_now
from leadferry.dates import parse_day

if TYPE_CHECKING:
    from leadferry.backfill import ChunkOutcome
    from leadferry.connectors.base import FetchProgress


def register(app: typer.Typer) -> None:
    app.command("backfill")(backfill)


def backfill(
    name: Annotated[str, typer.Argument(help="The dataset to load the past window into.")],
    from_: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last day, included, YYYY-MM-DD.")],
    chunk_days: Annotated[
        int, typer.Option("--chunk-days", help="Days per run (the last chunk may be shorter).")
    ] = 7,
) -> None:
    """Load a past window into a dataset in chunks, without changing its saved settings.

    Each chunk is one run (trigger backfill). After a failure, the same command resumes.

    Chunks that already have a successful backfill run of the same days are skipped.
    """
    from leadferry.backfill import describe, plan_backfill, run_backfill

    first, last = parse_day(from_, "--from"), parse_day(to, "--to")
    config = settings()
    started = time.perf_counter()
    with (
        open_store() as store,
        # On stdout, like the chunk lines, so they print above the bar; off when piped.
        progress_bar("chunks", console) as bar,
    ):
        chunks = plan_backfill(store, name, first, last, chunk_days, now=utc_now())
        task = bar.add_task(f"{name} {describe(chunks[0])}", total=len(chunks), rows=0)
        loaded = 0

        def show(state: FetchProgress) -> None:
            bar.update(task, rows=loaded + state.rows)

        def report(chunk: ChunkOutcome) -> None:
            nonlocal loaded
            where = f"{name}: chunk {chunk.number}/{chunk.total} {chunk.days}"
            if chunk.status == "done" and chunk.run is not None:
                loaded += chunk.run.total_rows
                line = f"{where}: done, {chunk.run.total_rows:,} rows (run {chunk.run.id})"
            elif chunk.status == "skipped" and chunk.run is not None:
                line = f"{where}: skipped, already done by run {chunk.run.id}"
            else:
                line = f"{where}: failed"
            bar.console.print(line, highlight=False, soft_wrap=True)
            if chunk.number < chunk.total:
                following = chunks[chunk.number]
                bar.update(task, description=f"{name} {describe(following)}")
            bar.update(task, completed=chunk.number, rows=loaded)

        result = run_backfill(
            store,
            config,
            name,
            first,
            last,
            chunk_days,
            clock=utc_now,
            progress=show,
            on_chunk=report,
        )
    seconds = time.perf_counter() - started
    rows = ", ".join(f"{table}: {count:,}" for table, count in result.rows.items())
    console.print(
        f"{name}: backfilled {first} .. {last} in {_chunks(len(result.chunks))} "
        f"({result.done} done, {result.skipped} skipped): {rows or 'no rows'} in {seconds:.1f}s",
        highlight=False,
        soft_wrap=True,
    )


def _chunks(count: int) -> str:
    return f"{count} chunk{'s' if count != 1 else ''}"
