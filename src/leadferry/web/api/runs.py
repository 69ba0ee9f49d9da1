"""Runs: start one (Run Now), backfill, stop one, list a dataset's history, show one run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from leadferry.backfill import BackfillRequest, describe
from leadferry.dates import zone
from leadferry.service.datasets import dataset_zone
from leadferry.service.runs import history_summary, run_json
from leadferry.store import STATUSES, TRIGGERS, Run, Store
from leadferry.web.api.models import (
    BackfillIn,
    BackfillQueued,
    CancelResult,
    HistorySummary,
    RunPublic,
    RunQueued,
    RunsPublic,
    problems,
)
from leadferry.web.api.routing import ApiRoute
from leadferry.web.deps import EditorDep, SchedulerDep, StoreDep, ViewerDep

router = APIRouter(tags=["runs"], route_class=ApiRoute)

DatasetPath = Annotated[str, Path(max_length=63, description="The dataset's name.")]
MAX_RUN_ID = 2**62  # SQLite integers stop at 2**63 - 1


def run_public(store: Store, run: Run) -> RunPublic:
    """A run with its window in its dataset's zone."""
    tz = zone(dataset_zone(store, store.get_dataset(run.dataset)))
    return RunPublic(**run_json(run, tz), dataset=run.dataset, number=store.run_number(run.id))


@router.post("/datasets/{name}/runs", status_code=202, responses=problems(403, 404, 409))
def start_run(
    name: DatasetPath,
    request: Request,
    response: Response,
    scheduler: SchedulerDep,
    _user: EditorDep,
) -> RunQueued:
    """Run Now: queue a manual run of the dataset (409 while it is already running).

    The run appears in the history (``GET /datasets/{name}/runs``) as soon as it starts; a
    manual run that fails is recorded but not retried.
    """
    scheduler.run_now(name)
    history = request.url_for("list_runs", name=name).path
    response.headers["Location"] = history
    return RunQueued(dataset=name, trigger="manual", status="queued", history=history)


@router.post("/datasets/{name}/backfills", status_code=202, responses=problems(403, 404, 409, 422))
def start_backfill(
    name: DatasetPath,
    body: BackfillIn,
    request: Request,
    response: Response,
    scheduler: SchedulerDep,
    _user: EditorDep,
) -> BackfillQueued:
    """Backfill: queue runs of the days ``first`` .. ``last`` in chunks of ``chunk_days``,
    without changing the dataset's settings, as ``leadferry backfill`` does (chunks already
    loaded by a backfill are skipped, so asking again resumes). ``422`` when the days cannot
    be backfilled (the detail says why), ``409`` while the dataset is running."""
    chunks = scheduler.backfill(name, BackfillRequest(body.first, body.last, body.chunk_days))
    history = request.url_for("list_runs", name=name).path
    response.headers["Location"] = history
    return BackfillQueued(
        dataset=name,
        trigger="backfill",
        status="queued",
        chunks=[describe(chunk) for chunk in chunks],
        history=history,
    )


@router.post("/datasets/{name}/cancel", responses=problems(403, 404, 409))
def cancel_run(name: DatasetPath, scheduler: SchedulerDep, user: EditorDep) -> CancelResult:
    """Stop the dataset's run: a run still waiting for a worker of this service is dropped;
    a running one (or a backfill's current run, which ends the backfill) stops at its next
    page and is recorded failed, with who stopped it. ``409`` when nothing is queued or
    running."""
    outcome = scheduler.cancel(name, user.name)
    return CancelResult(dataset=name, outcome=outcome)  # type: ignore[arg-type]


@router.get("/datasets/{name}/runs", responses=problems(404))
def list_runs(
    name: DatasetPath,
    store: StoreDep,
    _user: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many runs, newest first.")] = 20,
    offset: Annotated[int, Query(ge=0, description="Skip this many matching runs first.")] = 0,
    status: Annotated[
        str,
        Query(pattern="^(|" + "|".join(STATUSES) + ")$", description="Only runs with this result."),
    ] = "",
    trigger: Annotated[
        str,
        Query(pattern="^(|" + "|".join(TRIGGERS) + ")$", description="Only runs started so."),
    ] = "",
) -> RunsPublic:
    """A dataset's history, newest first, each run with its ``number`` in the dataset's
    history (1 for its first run); ``total`` counts the runs matching the filters, and the
    summary gives the success rate and average duration of the runs listed. Windows are in
    the dataset's zone, other times in UTC."""
    dataset = store.get_dataset(name)
    tz = zone(dataset_zone(store, dataset))
    page, total = store.history_page(
        name, status=status, trigger=trigger, offset=offset, limit=limit
    )
    runs = [run for _number, run in page]
    return RunsPublic(
        data=[RunPublic(**run_json(run, tz), dataset=name, number=number) for number, run in page],
        count=len(runs),
        total=total,
        summary=HistorySummary(**history_summary(runs)),
    )


@router.get("/runs/{run_id}", responses=problems(404))
def show_run(
    run_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID)], store: StoreDep, _user: ViewerDep
) -> RunPublic:
    """One run: its trigger, status, window, rows per table, duration and error."""
    return run_public(store, store.get_run(run_id))
