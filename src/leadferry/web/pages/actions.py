"""What editors do to a dataset from its pages: Run Now, Backfill, Cancel, Resume, Delete.

Each route needs the editor role (viewers get 403) and the session's CSRF token. Forms work
without JavaScript (a redirect with a flash message); HTMX requests get the fragment to swap.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from leadferry import scheduler as run_service
from leadferry.backfill import BackfillRequest, describe
from leadferry.dates import MAX_DAYS_BACK, zone
from leadferry.service.data import remove_dataset
from leadferry.service.datasets import dataset_zone
from leadferry.web.api.models import EARLIEST_DAY, LATEST_DAY
from leadferry.web.deps import EditorDep, NowDep, SchedulerDep, SettingsDep, StoreDep
from leadferry.web.pages.common import redirect_with_flash
from leadferry.web.pages.data_center import line_of, render_row
from leadferry.web.pages.dataset import render_history
from leadferry.web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)


@router.post("/datasets/{name:dataset}/run")
def run_now(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    scheduler: SchedulerDep,
    _user: EditorDep,
    name: str,
    view: Literal["row", "history"] = "row",
) -> Response:
    """Queue a manual run. HTMX gets the Data Center line (``view=row``) or the History
    section (``view=history``), which poll until the run ends.

    Raises:
        NotFoundError: no such dataset; BusyError: this service is already running it.
    """
    scheduler.run_now(name)
    if not is_htmx(request):
        return redirect_with_flash(f"/datasets/{name}", f"Run of {name} queued.")
    if view == "history":
        return render_history(request, store, now, store.get_dataset(name), can_change=True)
    return render_row(request, line_of(request, store, settings, now, name), can_change=True)


@router.post("/datasets/{name:dataset}/backfill")
def backfill(
    scheduler: SchedulerDep,
    _user: EditorDep,
    name: str,
    first: Annotated[dt.date, Form(ge=EARLIEST_DAY, le=LATEST_DAY)],
    last: Annotated[dt.date, Form(ge=EARLIEST_DAY, le=LATEST_DAY)],
    chunk_days: Annotated[int, Form(ge=1, le=MAX_DAYS_BACK)] = 7,
) -> Response:
    """Queue a backfill of the days *first* .. *last* on the workers, as ``leadferry
    backfill`` runs it (chunks already loaded by a backfill are skipped).

    Raises:
        ConfigError: days that cannot be backfilled (the message says why);
        BusyError: the dataset is running or queued.
    """
    chunks = scheduler.backfill(name, BackfillRequest(first, last, chunk_days))
    count = f"{len(chunks)} run{'s' if len(chunks) > 1 else ''}"
    return redirect_with_flash(
        f"/datasets/{name}",
        f"Backfill of {name} queued: {first} .. {last} in {count} "
        f"(first {describe(chunks[0])}); its runs appear in the History.",
    )


@router.post("/datasets/{name:dataset}/cancel")
def cancel(scheduler: SchedulerDep, user: EditorDep, name: str) -> Response:
    """Stop the dataset: drop its run if it still waits for a worker, else ask the running
    run (or backfill) to stop at its next page.

    Raises:
        NotFoundError: no such dataset; ConflictError: it is neither queued nor running.
    """
    if scheduler.cancel(name, user.name) == "dropped":
        message = f"The queued run of {name} was dropped."
    else:
        message = f"Asked the run of {name} to stop: it stops at its next page."
    return redirect_with_flash(f"/datasets/{name}", message)


@router.post("/datasets/{name:dataset}/resume")
def resume(store: StoreDep, now: NowDep, _user: EditorDep, name: str) -> Response:
    """Clear a failing dataset's mark and put it back on its schedule.

    Raises:
        NotFoundError: no such dataset.
    """
    upcoming = run_service.resume(store, name, now)
    message = f"Resumed {name}: it is back on its schedule."
    if upcoming is not None:
        tz = zone(dataset_zone(store, store.get_dataset(name)))
        message += f" Next run {upcoming.astimezone(tz):%Y-%m-%d %H:%M %Z}."
    return redirect_with_flash(f"/datasets/{name}", message)


@router.get("/datasets/{name:dataset}/delete")
def confirm_delete(request: Request, store: StoreDep, _user: EditorDep, name: str) -> Response:
    """The confirm step before a dataset is deleted."""
    dataset = store.get_dataset(name)
    return render(request, "dataset_delete.html", {"dataset": dataset})  # type: ignore[no-any-return]


@router.post("/datasets/{name:dataset}/delete")
def delete(
    store: StoreDep,
    settings: SettingsDep,
    _user: EditorDep,
    name: str,
    drop_data: Annotated[bool, Form()] = False,
) -> Response:
    """Delete the dataset and its history (and its warehouse data when asked).

    Raises:
        NotFoundError: no such dataset; BusyError: it is running or the warehouse is busy.
    """
    remove_dataset(store, settings, name, drop_data=drop_data)
    done = " and its warehouse data" if drop_data else " (its warehouse data was kept)"
    return redirect_with_flash("/", f"Deleted dataset {name}{done}.")
