"""``/datasets``: what to pull from a report, when, and how to keep it.

Bodies carry the settings of the four panes at once; the service layer validates them
exactly as for ``leadferry datasets create|edit|schedule``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from leadferry.dates import zone
from leadferry.schedule import Schedule
from leadferry.service.data import remove_dataset
from leadferry.service.datasets import (
    create_dataset,
    describe,
    details,
    edit_dataset,
    schedule_changes,
    set_schedule,
    upcoming_runs,
)
from leadferry.service.listing import SORTS, STATUS_FILTERS, DatasetQuery
from leadferry.service.listing import list_datasets as listed
from leadferry.service.runs import when
from leadferry.service.status import DatasetStatus, dataset_status
from leadferry.store import Dataset, DatasetSpec, Store
from leadferry.web.api.models import (
    DatasetCreate,
    DatasetDetails,
    DatasetListed,
    DatasetsPublic,
    DatasetUpdate,
    date_selection_of,
    problems,
)
from leadferry.web.api.routing import ApiRoute
from leadferry.web.deps import EditorDep, NowDep, SettingsDep, StoreDep, ViewerDep
from leadferry.web.pages.common import page_warehouse

router = APIRouter(prefix="/datasets", tags=["datasets"], route_class=ApiRoute)

DatasetPath = Annotated[str, Path(max_length=63, description="The dataset's name.")]

SCHEDULE_FIELDS = frozenset(
    (
        "schedule",
        "retry_every",
        "retries",
        "when_failing",
        "stale_after",
        "alert_webhook",
        "alert_emails",
    )
)
# Settings that null clears; for the others null is the same as leaving them out.
CLEARABLE = frozenset(("timezone", "merge_key", "owner"))


def status_fields(store: Store, dataset: Dataset, now: dt.datetime) -> dict[str, Any]:
    """The dataset's status badge, why it needs attention, and its last success."""
    return shown_status(dataset, dataset_status(dataset, store.list_runs(dataset.name), now))


def shown_status(dataset: Dataset, state: DatasetStatus) -> dict[str, Any]:
    return {
        "status": state.status,
        "attention": list(state.reasons),
        "last_success": when(state.last_success) or None,
        "schedule_settings": dataset.schedule,
    }


def dataset_details(store: Store, name: str, now: dt.datetime) -> DatasetDetails:
    """A dataset as GET /datasets/{name} shows it, with its next five scheduled runs.

    Raises:
        NotFoundError: no such dataset.
    """
    shown = details(store, name, now)
    dataset = store.get_dataset(name)
    upcoming = [slot.isoformat() for slot in upcoming_runs(dataset, now)]
    return DatasetDetails(**shown, **status_fields(store, dataset, now), next_runs=upcoming)


def scheduling(
    body: DatasetCreate | DatasetUpdate, current: Dataset | None
) -> dict[str, Any] | None:
    """The schedule fields *body* sets (None: it sets none), validated before anything is saved.

    *current* is the saved dataset (None when creating): its schedule stays when the body
    changes only retries or alerts.

    Raises:
        ConfigError: an invalid schedule, or retry settings that contradict each other.
    """
    sent = body.model_fields_set & SCHEDULE_FIELDS
    if not sent:
        return None
    if "schedule" in sent:
        plan = Schedule.parse(body.schedule.as_fields() if body.schedule else None)
    else:
        plan = Schedule.parse(current.schedule if current else None)
    no_retry = ("retry_every" in sent and body.retry_every is None) or (
        "retries" in sent and body.retries == 0
    )
    retry_every = retries = None
    if not no_retry and sent & {"retry_every", "retries"}:
        # One of the two given: the other keeps its saved value (if retries were on).
        saved_every = current.retry_every if current is not None else None
        saved_retries = current.retries if current is not None and saved_every else None
        retry_every = body.retry_every if "retry_every" in sent else saved_every
        retries = body.retries if "retries" in sent else saved_retries
    changes = schedule_changes(
        plan,
        retry_every=retry_every,
        retries=retries,
        no_retry=no_retry,
        when_failing=body.when_failing,
        stale_after=body.stale_after,
        alert_webhook=body.alert_webhook,
        alert_emails=body.alert_emails,
    )
    for field, cleared in (("stale_after", None), ("alert_webhook", None), ("alert_emails", [])):
        if field in sent and getattr(body, field) is None:
            changes[field] = cleared
    return changes


@router.get("", responses=problems(422))
def list_datasets(
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    _user: ViewerDep,
    attention: Annotated[
        bool, Query(description="Only the datasets that need attention (Data Center's filter).")
    ] = False,
    q: Annotated[
        str, Query(max_length=200, description="Text found in the name or description.")
    ] = "",
    connector: Annotated[str, Query(description="Only this connector's datasets.")] = "",
    account: Annotated[str, Query(description="Only this account's datasets.")] = "",
    status: Annotated[
        str,
        Query(description="Only this status: " + ", ".join(STATUS_FILTERS) + "."),
    ] = "",
    sort: Annotated[
        str,
        Query(description="One of " + ", ".join(SORTS) + "; a leading - reverses the order."),
    ] = "name",
    limit: Annotated[
        int | None, Query(ge=1, description="At most this many (default: every match).")
    ] = None,
    offset: Annotated[int, Query(ge=0, description="Skip this many matches first.")] = 0,
) -> DatasetsPublic:
    """The datasets matching the filters with their status, settings, schedule and last run,
    sorted, from *offset*, at most *limit*; ``total`` counts every match."""
    query = DatasetQuery.of_request(
        q, connector, account, status, attention=attention, sort=sort, offset=offset, limit=limit
    )
    listing = listed(store, page_warehouse(settings), now, query)
    found = [
        DatasetListed(
            **describe(line.dataset, zone(line.timezone)),
            **shown_status(line.dataset, line.status),
            recent_runs=list(line.recent),
        )
        for line in listing.lines
    ]
    return DatasetsPublic(
        data=found, count=len(found), total=listing.total, offset=offset, limit=limit
    )


@router.post("", status_code=201, responses=problems(403, 404, 409, 422))
def add_dataset(
    body: DatasetCreate,
    store: StoreDep,
    now: NowDep,
    request: Request,
    response: Response,
    _user: EditorDep,
) -> DatasetDetails:
    """Create a dataset (report, parameters, dates, update method, schedule, name).

    An unknown account is a 404; invalid settings a 422 that names the field.
    """
    schedule = scheduling(body, None)
    spec = DatasetSpec(
        name=body.name,
        account=body.account,
        report=body.report,
        params=dict(body.params or {}),
        date_selection=date_selection_of(body.date_selection),
        timezone=body.timezone,
        update_method=body.update_method or "replace",
        merge_key=body.merge_key,
        description=body.description or "",
        owner=body.owner,
        display_name=(body.display_name or "").strip(),
        incremental=body.incremental.as_json() if body.incremental else None,
    )
    create_dataset(store, spec, now)
    if schedule is not None:
        set_schedule(store, body.name, schedule, now)
    response.headers["Location"] = request.url_for("show_dataset", name=body.name).path
    return dataset_details(store, body.name, now)


@router.get("/{name}", responses=problems(404))
def show_dataset(
    name: DatasetPath, store: StoreDep, now: NowDep, _user: ViewerDep
) -> DatasetDetails:
    """A dataset, the window its next run would load, and its next five scheduled runs."""
    return dataset_details(store, name, now)


@router.patch("/{name}", responses=problems(403, 404, 409, 422))
def change_dataset(
    name: DatasetPath, body: DatasetUpdate, store: StoreDep, now: NowDep, _user: EditorDep
) -> DatasetDetails:
    """Change some settings; those left out keep their value.

    ``null`` clears ``timezone``, ``merge_key``, ``owner``, ``display_name`` (back to the
    name), ``incremental``, ``schedule``
    (manual), ``retry_every`` (no retry), ``stale_after``, ``alert_webhook``,
    ``alert_emails``, and sets ``date_selection`` back to Default. ``params`` replaces the
    parameters as a whole. The name cannot change: it is the warehouse schema's.
    """
    current = store.get_dataset(name)
    schedule = scheduling(body, current)
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    for field in ("account", "report", "params", "update_method", "description"):
        if field in sent and getattr(body, field) is not None:
            changes[field] = getattr(body, field)
    for field in CLEARABLE & sent:
        changes[field] = getattr(body, field)
    if "date_selection" in sent:
        changes["date_selection"] = date_selection_of(body.date_selection)
    if "display_name" in sent:
        changes["display_name"] = (body.display_name or "").strip()
    if "incremental" in sent:
        changes["incremental"] = body.incremental.as_json() if body.incremental else None
    if changes:
        edit_dataset(store, name, changes, now)
    if schedule is not None:
        set_schedule(store, name, schedule, now)
    return dataset_details(store, name, now)


@router.delete("/{name}", status_code=204, responses=problems(403, 404, 409))
def delete_dataset(
    name: DatasetPath,
    store: StoreDep,
    settings: SettingsDep,
    _user: EditorDep,
    drop_data: Annotated[
        bool, Query(description="Also drop its schema (its tables) from the warehouse.")
    ] = False,
) -> None:
    """Remove a dataset and its history; its tables stay unless ``drop_data=true``.

    Refused (409) while it runs, or while the warehouse is busy loading.
    """
    remove_dataset(store, settings, name, drop_data=drop_data)
