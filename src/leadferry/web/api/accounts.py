"""``/accounts``: vendor logins. Secrets go in and never come out (masks only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from leadferry.connectors import get_connector
from leadferry.errors import ConnectorError, NotFoundError
from leadferry.service.accounts import (
    account_public,
    add_account,
    add_tested_account,
    check_connection,
    sort_fields,
    update_account,
)
from leadferry.service.runs import when
from leadferry.store import AccountSummary, Store
from leadferry.web.api.models import (
    AccountCreate,
    AccountPublic,
    AccountsPublic,
    AccountTestPublic,
    AccountUpdate,
    ConnectionTest,
    LookupChoice,
    LookupChoices,
    problems,
)
from leadferry.web.api.routing import ApiRoute
from leadferry.web.deps import (
    EditorDep,
    LookupsDep,
    NowDep,
    SettingsDep,
    StoreDep,
    VendorClientDep,
    ViewerDep,
)

router = APIRouter(prefix="/accounts", tags=["accounts"], route_class=ApiRoute)

AccountPath = Annotated[str, Path(max_length=64, description="The account's name.")]
ParameterPath = Annotated[str, Path(max_length=64, description="A report parameter's id.")]


def _public(store: Store, name: str) -> AccountPublic:
    """The account as lists show it (masked secrets, dataset count).

    Raises:
        NotFoundError: no such account.
    """
    for summary in store.list_accounts():
        if summary.name == name:
            return _shown(summary)
    raise NotFoundError(f"no account named {name!r}")


def _shown(summary: AccountSummary) -> AccountPublic:
    tested = summary.tested_at
    last_test = (
        None
        if tested is None
        else AccountTestPublic(
            at=tested.isoformat(timespec="seconds"),
            ok=bool(summary.test_ok),
            message=summary.test_message,
        )
    )
    return AccountPublic(**account_public(summary), last_test=last_test)


@router.get("")
def list_accounts(store: StoreDep, _user: ViewerDep) -> AccountsPublic:
    """Every account with its connector, settings, masked secrets and dataset count."""
    found = [_shown(a) for a in store.list_accounts()]
    return AccountsPublic(data=found, count=len(found))


@router.post("", status_code=201, responses=problems(403, 404, 409, 422, 502))
def create_account(
    body: AccountCreate,
    store: StoreDep,
    settings: SettingsDep,
    vendor_client: VendorClientDep,
    request: Request,
    response: Response,
    _user: EditorDep,
) -> AccountPublic:
    """Add an account; ``fields`` holds its settings and secrets by field id.

    Its connection is tested first, as the web form does: when the vendor refuses the
    credentials or cannot be reached, nothing is saved and the answer is a 502 saying why.
    ``"test": false`` saves it untested.
    """
    if not body.test:
        add_account(store, body.name, body.connector, body.fields)
    else:
        ok, said = add_tested_account(
            store, settings, body.name, body.connector, body.fields, client=vendor_client
        )
        if not ok:
            raise ConnectorError(
                f'{said}; nothing was saved: correct the fields, or send "test": false to '
                "save the account untested"
            )
    response.headers["Location"] = request.url_for("show_account", name=body.name).path
    return _public(store, body.name)


@router.get("/{name}", responses=problems(404))
def show_account(name: AccountPath, store: StoreDep, _user: ViewerDep) -> AccountPublic:
    """One account (secrets masked)."""
    return _public(store, name)


@router.patch("/{name}", responses=problems(403, 404, 409, 422))
def change_account(
    name: AccountPath, body: AccountUpdate, store: StoreDep, _user: EditorDep
) -> AccountPublic:
    """Rename an account and/or change fields; a secret given replaces (rotates) the old one.

    Its datasets follow a rename and keep working after a rotation.
    """
    connector = get_connector(store.get_account(name).connector)
    if body.fields:
        # Refuse bad fields before renaming, so a refused change changes nothing.
        sort_fields(connector, body.fields, require=False)
    if body.name is not None and body.name != name:
        name = store.rename_account(name, body.name).name
    if body.fields:
        update_account(store, name, body.fields)
    return _public(store, name)


@router.delete("/{name}", status_code=204, responses=problems(403, 404, 409))
def remove_account(name: AccountPath, store: StoreDep, _user: EditorDep) -> None:
    """Remove an account; refused (409) while datasets use it."""
    store.remove_account(name)


@router.post("/{name}/test", responses=problems(403, 404))
def check_account(
    name: AccountPath,
    store: StoreDep,
    settings: SettingsDep,
    vendor_client: VendorClientDep,
    _user: EditorDep,
) -> ConnectionTest:
    """Test connection: one authenticated call to the vendor.

    A refusal or an unreachable vendor is still a 200, with ``ok: false`` and the reason:
    the test ran, and its answer is the result.
    """
    label = get_connector(store.get_account(name).connector).label
    try:
        check_connection(store, settings, name, vendor_client)
    except ConnectorError as exc:
        return ConnectionTest(ok=False, connector=label, error=str(exc))
    return ConnectionTest(ok=True, connector=label)


@router.get("/{name}/lookups/{parameter}", responses=problems(403, 404, 422, 502))
def list_lookup(
    name: AccountPath,
    parameter: ParameterPath,
    store: StoreDep,
    settings: SettingsDep,
    vendor_client: VendorClientDep,
    lookups: LookupsDep,
    now: NowDep,
    _user: EditorDep,
    refresh: Annotated[
        bool, Query(description="Ask the vendor again, whatever was read in the last minutes.")
    ] = False,
) -> LookupChoices:
    """The values the vendor offers for a report parameter (SalesExec's ``lead_type_uid``),
    read with the account's credentials: ``value`` is what the parameter takes, ``label`` how
    the vendor names it. Any other value is still accepted where the parameter is set.

    An answer is kept five minutes per account and parameter (``read_at`` says when the vendor
    was asked); any change to the account, its secrets rotated or its settings edited, or
    ``refresh``, asks the vendor again.

    404: the account's connector lists no values for that parameter; 422: the account's
    secrets cannot be read; 502: the vendor refused the credentials or failed.
    """
    lookup = lookups.look_up(store, settings, name, parameter, now, vendor_client, refresh=refresh)
    found = [LookupChoice(value=value, label=label) for value, label in lookup.choices]
    return LookupChoices(data=found, count=len(found), read_at=when(lookup.read_at))
