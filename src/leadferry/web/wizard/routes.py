"""The Add DataSet and Edit pages, pane by pane.

Each pane is a plain form post (Back, Next, Save) that re-posts every control; a pane's errors
re-render it with status 422, each next to its control. HTMX makes the panes live without
saving anything: controls appear and disappear as choices change (``/wizard/part/...``), the
window of the date selection and the next five runs follow the inputs, Load Preview fetches
the first rows, and the name is checked as it is typed.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from leadferry.connectors import CONNECTORS, get_connector
from leadferry.errors import ConfigError, ConnectorError, NotFoundError
from leadferry.schedule import WEEKDAYS
from leadferry.service.accounts import check_new_account
from leadferry.service.preview import preview_report
from leadferry.web.deps import (
    EditorDep,
    FormDep,
    LookupsDep,
    NowDep,
    SettingsDep,
    StoreDep,
    VendorClientDep,
)
from leadferry.web.templating import render
from leadferry.web.wizard import controls
from leadferry.web.wizard.draft import NEW_ACCOUNT, STEP_TITLES, STEPS, Draft

router = APIRouter(include_in_schema=False)

PARTS = {
    "account": "the chosen connector's accounts (the first one chosen) and the inline account",
    "new_account": "the inline account's fields, for the chosen connector",
    "report": "the report's parameters and date controls",
    "dates": "the date controls of the chosen Duration",
    "single": "Report Date's controls",
    "start": "Start Date's controls",
    "end": "End Date's controls",
    "schedule": "the Basic or Advanced schedule controls",
    "retry": "the retry controls",
    "update": "the update method's controls",
    "window": "the line that tells which days the date controls select",
    "next_runs": "the schedule's description and next five runs, or what is wrong with it",
    "name_check": "whether the dataset name can be used, shown next to the field",
}
"""The parts of a pane that HTMX re-renders when a choice changes."""
PREVIEW_ROWS = 10


@router.get("/datasets/new")
def new_dataset(
    request: Request,
    store: StoreDep,
    now: NowDep,
    user: EditorDep,
    clone: Annotated[str, Query(max_length=63)] = "",
) -> Any:
    """The Credentials pane of a new dataset; ``?clone=NAME`` fills every pane with dataset
    NAME's settings, all but its name (NotFoundError when there is no such dataset)."""
    if clone:
        draft = Draft.of_dataset(store, now, user, store.get_dataset(clone), clone=True)
    else:
        draft = Draft(store, now, user, {})
    return _pane(request, draft, STEPS[0])


@router.post("/datasets/new")
def new_dataset_step(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    vendor_client: VendorClientDep,
    now: NowDep,
    user: EditorDep,
    form: FormDep,
) -> Any:
    """Back, Next or Save from a pane of a new dataset (an inline account is tested first)."""
    draft = Draft.from_form(store, now, user, form)
    draft.account_tester = partial(check_new_account, settings, client=vendor_client)
    return _advance(request, draft, form)


@router.get("/datasets/{name}/edit")
def edit_dataset_page(
    request: Request, name: str, store: StoreDep, now: NowDep, user: EditorDep
) -> Any:
    """The panes of a saved dataset, filled in."""
    draft = Draft.of_dataset(store, now, user, store.get_dataset(name))
    return _pane(request, draft, STEPS[0])


@router.post("/datasets/{name}/edit")
def edit_dataset_step(
    request: Request, name: str, store: StoreDep, now: NowDep, user: EditorDep, form: FormDep
) -> Any:
    """Back, Next or Save from a pane of a saved dataset."""
    dataset = store.get_dataset(name)
    return _advance(request, Draft.from_form(store, now, user, form, dataset), form)


def _advance(request: Request, draft: Draft, form: FormData) -> Any:
    step = str(form.get("step") or STEPS[0])
    index = STEPS.index(step) if step in STEPS else 0
    action = form.get("action")
    if action == "back":
        return _pane(request, draft, STEPS[max(index - 1, 0)])
    if action == "save" or index == len(STEPS) - 1:
        failed = draft.save()
        if failed is not None:
            return _pane(request, draft, failed, status_code=422)
        return RedirectResponse(f"/datasets/{draft.name}", status_code=303)
    if not draft.check(STEPS[index]):
        return _pane(request, draft, STEPS[index], status_code=422)
    return _pane(request, draft, STEPS[index + 1])


def _pane(request: Request, draft: Draft, step: str, status_code: int = 200) -> Any:
    return render(
        request,
        "wizard.html",
        _context(draft) | {"step": step, "steps": STEPS, "titles": STEP_TITLES},
        status_code=status_code,
    )


def _context(draft: Draft) -> dict[str, Any]:
    return {
        "w": draft,
        "controls": controls,
        "connectors": CONNECTORS,
        "weekdays": WEEKDAYS,
        "add_choice": NEW_ACCOUNT,
    }


# -- HTMX: live parts of a pane, nothing saved ----------------------------------------------


@router.post("/wizard/part/{part}")
def wizard_part(
    request: Request, part: str, store: StoreDep, now: NowDep, user: EditorDep, form: FormDep
) -> Any:
    """Re-render one part of a pane for the choices posted (see :data:`PARTS`)."""
    if part not in PARTS:
        raise NotFoundError(f"no part {part!r} in the Add DataSet panes")
    # A connector was just chosen: the account chosen before belongs to another one.
    without = ("account",) if part == "account" else ()
    draft = Draft.from_form(store, now, user, form, without=without)
    return render(request, "_wizard_part.html", _context(draft) | {"part": part})


@router.get("/wizard/lookup/{param_id}")
def wizard_lookup(
    request: Request,
    param_id: str,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    vendor_client: VendorClientDep,
    lookups: LookupsDep,
    _user: EditorDep,
    account: Annotated[str, Query(max_length=64)],
    refresh: bool = False,
) -> Any:
    """The menu of a parameter that declares a lookup, read from the vendor with *account*
    (kept a few minutes: ``refresh`` reads it again).

    When the vendor refuses or cannot be reached, or the account's secrets cannot be read, the
    control stays free entry and one line says why.

    Raises:
        NotFoundError: no such account, or its connector lists no values for *param_id*.
    """
    param = get_connector(store.get_account(account).connector).lookup_param(param_id)
    try:
        found = lookups.look_up(
            store, settings, account, param_id, now, vendor_client, refresh=refresh
        )
        failed = ""
    except (ConnectorError, ConfigError) as exc:
        found, failed = None, str(exc)
    context = {"param": param, "account": account, "lookup": found, "failed": failed, "now": now}
    return render(request, "_wizard_lookup.html", context)


@router.post("/wizard/preview")
def wizard_preview(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    vendor_client: VendorClientDep,
    user: EditorDep,
    form: FormDep,
) -> Any:
    """Load Preview: the first rows of the report for the Details pane's choices, unsaved.

    The Details pane's errors come back as a 422 whose controls, re-rendered out of band,
    carry each error next to its control.

    Raises:
        ConfigError: no account is chosen (shown in the flash area).
        ConnectorError: the vendor refused or failed (shown in the flash area).
    """
    draft = Draft.from_form(store, now, user, form)
    report = draft.report
    if report is None:
        raise ConfigError("choose an account before loading a preview")
    if not draft.check("details"):
        # Each error goes next to its control, as Next shows them; the preview box says so.
        return render(request, "_wizard_preview_errors.html", _context(draft), status_code=422)
    params = controls.params_from_form(report, draft.values)
    timezone = controls.check_timezone(draft.values, "timezone")
    selection = controls.report_dates(report, draft.values)
    window, _ = draft.window() if report.dated else (None, "")
    result = preview_report(
        store,
        settings,
        draft.value("account"),
        report.slug,
        params,
        selection,
        timezone,
        now,
        limit=PREVIEW_ROWS,
        client=vendor_client,
    )
    return render(
        request,
        "_wizard_preview.html",
        {"result": result, "report": report, "window": window, "controls": controls},
    )
