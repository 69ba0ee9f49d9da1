"""The Accounts pages: vendor logins listed with masked secrets; add, test, edit, rotate, rename,
remove.

Everyone logged in sees the accounts; changing them (and testing them, which uses the secret)
needs the editor role. Secrets are write-only: forms have password inputs that are never
pre-filled, and pages show only the masks of :class:`~leadferry.store.AccountSummary`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from leadferry.auth import role_allows
from leadferry.connectors import CONNECTORS
from leadferry.errors import ConfigError, ConnectorError, NotFoundError
from leadferry.service.accounts import (
    ADDRESS_FIELDS,
    add_tested_account,
    check_connection,
    sort_fields,
    update_account,
)
from leadferry.web import status_of
from leadferry.web.deps import (
    EditorDep,
    FormTextsDep,
    SettingsDep,
    StoreDep,
    VendorClientDep,
    ViewerDep,
)
from leadferry.web.templating import is_htmx, render

if TYPE_CHECKING:
    from leadferry.connectors.base import Connector, CredentialField
    from leadferry.store import AccountSummary, Store
    from leadferry.store.users import User

router = APIRouter(include_in_schema=False)

DONE = {
    "added": "Account added; its connection test is shown below.",
    "settings": "Settings saved.",
    "secret": "Secret replaced: the account's datasets use the new one from their next run.",
    "renamed": "Account renamed: its datasets follow it.",
}
"""Messages shown after a change redirected back to the account (keys of ``?done=``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FieldGroup:
    """Some of a connector's credential fields, as the ``credential_fields`` macro takes them."""

    fields: tuple[CredentialField, ...]


def settings_fields(connector: type[Connector]) -> FieldGroup:
    """The non-secret fields but the address (it changes with the secrets), all shown."""
    fields = tuple(
        dataclasses.replace(f, advanced=False)
        for f in connector.fields
        if not f.secret and f.id not in ADDRESS_FIELDS
    )
    return FieldGroup(fields)


def secret_fields(connector: type[Connector]) -> FieldGroup:
    """What rotating the secret asks for: the secret fields, and the address (base URL),
    which may only change together with them."""
    return FieldGroup(
        tuple(
            dataclasses.replace(f, advanced=False)
            for f in connector.fields
            if f.secret or f.id in ADDRESS_FIELDS
        )
    )


def field_errors(
    connector: type[Connector], fields: Sequence[CredentialField], given: Mapping[str, str]
) -> dict[str, str]:
    """A message per field of *fields* that is missing or invalid in *given*, by field id.

    Values are checked one by one with the service's own rules, so each message can stand
    next to its field.
    """
    errors: dict[str, str] = {}
    for field in fields:
        value = given.get(field.id, "")
        if not value:
            if field.required:
                errors[field.id] = f"{connector.label} accounts need the {field.label}."
            continue
        try:
            sort_fields(connector, {field.id: value}, require=False)
        except ConfigError as exc:
            errors[field.id] = str(exc)
    return errors


def _summary(store: Store, name: str) -> AccountSummary:
    for account in store.list_accounts():
        if account.name == name:
            return account
    raise NotFoundError(f"no account named {name!r}")


def _connector(name: str) -> type[Connector] | None:
    """The connector class of an account (None for one this version does not know)."""
    return CONNECTORS.get(name)


def _without_secrets(
    connector: type[Connector] | None, form: Mapping[str, str] | None
) -> dict[str, str]:
    """What a re-rendered form may show again: what was typed, except the secrets."""
    secret_ids = {f.id for f in connector.fields if f.secret} if connector else set()
    return {k: v for k, v in (form or {}).items() if k not in secret_ids}


def _account_url(name: str, done: str | None = None) -> str:
    return f"/accounts/{quote(name, safe='')}" + (f"?done={done}" if done else "")


def _can_edit(user: User) -> bool:
    return role_allows(user.role, "editor")


# -- the list and the add form ------------------------------------------------------------------


def _accounts_page(
    request: Request,
    store: Store,
    user: User,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    chosen = _connector((form or {}).get("connector", "")) or next(iter(CONNECTORS.values()))
    accounts = store.list_accounts()
    return render(
        request,
        "accounts.html",
        {
            "accounts": [(a, _connector(a.connector)) for a in accounts],
            "can_edit": _can_edit(user),
            "connectors": CONNECTORS.values(),
            "chosen": chosen,
            "form": _without_secrets(chosen, form),
            "errors": errors or {},
            "add_open": bool(errors) or not accounts,
        },
        status_code=status_code,
    )


@router.get("/accounts")
def accounts_page(request: Request, store: StoreDep, user: ViewerDep) -> Response:
    return _accounts_page(request, store, user)


@router.get("/accounts/new/fields")
def connector_fields(request: Request, _user: EditorDep, connector: str = "") -> Response:
    """The credential inputs of the chosen connector (swapped into the add form)."""
    chosen = _connector(connector)
    if chosen is None:
        raise NotFoundError(f"unknown connector {connector!r}")
    return render(request, "_account_fields.html", {"chosen": chosen, "form": {}, "errors": {}})


@router.post("/accounts")
def add(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    vendor_client: VendorClientDep,
    user: EditorDep,
    form: FormTextsDep,
) -> Response:
    """Test and save a new account, or show the form again with a message next to each bad
    field; when the vendor refuses the credentials, the form says why and offers Save anyway
    (which saves it with the failed test recorded)."""
    name = form.get("name", "")
    connector = _connector(form.get("connector", ""))
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the account a name."
    if connector is None:
        errors["connector"] = "Choose a connector."
    else:
        errors |= field_errors(connector, connector.fields, form)
    if connector is not None and not errors:
        given = {f.id: form[f.id] for f in connector.fields if form.get(f.id)}
        try:
            ok, said = add_tested_account(
                store,
                settings,
                name,
                connector.name,
                given,
                client=vendor_client,
                save_anyway=bool(form.get("save_anyway")),
            )
        except ConfigError as exc:  # the name: invalid or taken (fields were checked above)
            errors["name"] = str(exc)
        else:
            if not ok and not form.get("save_anyway"):
                errors["test"] = said
        if not errors:
            return RedirectResponse(_account_url(name, "added"), status_code=303)
    return _accounts_page(request, store, user, form=form, errors=errors, status_code=422)


# -- one account --------------------------------------------------------------------------------


def _account_page(
    request: Request,
    store: Store,
    user: User,
    name: str,
    *,
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    test: tuple[bool, str] | None = None,
    status_code: int = 200,
) -> Response:
    account = _summary(store, name)
    connector = _connector(account.connector)
    datasets = sorted(d.name for d in store.list_datasets() if d.account == name)
    done = request.query_params.get("done")
    typed = _without_secrets(connector, form)
    context: dict[str, Any] = {
        "account": account,
        "connector": connector,
        "datasets": datasets,
        "can_edit": _can_edit(user),
        "errors": errors or {},
        "form": typed,
        "settings_values": account.config | typed,
        "test": test,
        "message": DONE.get(done or "") if not errors else None,
    }
    if connector is not None:
        context["settings_group"] = settings_fields(connector)
        context["secret_group"] = secret_fields(connector)
    return render(request, "account.html", context, status_code=status_code)


@router.get("/accounts/{name}")
def account_page(request: Request, name: str, store: StoreDep, user: ViewerDep) -> Response:
    return _account_page(request, store, user, name)


@router.post("/accounts/{name}/test")
def test_connection(
    request: Request,
    name: str,
    store: StoreDep,
    settings: SettingsDep,
    vendor_client: VendorClientDep,
    user: EditorDep,
) -> Response:
    """Make one authenticated call to the vendor; say whether it accepted the credentials.

    A refusal is an answer here, not a page error: it is shown where the button is.
    """
    try:
        label = check_connection(store, settings, name, vendor_client)
    except ConnectorError as exc:
        ok, text, status = False, str(exc), status_of(exc)
    else:
        ok, text, status = True, f"ok: {label} accepted the credentials", 200
    if is_htmx(request):
        # The row's "Last tested" cell follows, out of band.
        context = {"ok": ok, "text": text, "tested": _summary(store, name)}
        return render(request, "_account_test.html", context, status)
    return _account_page(request, store, user, name, test=(ok, text), status_code=status)


def _connector_or_refuse(store: Store, name: str) -> type[Connector]:
    account = store.get_account(name)
    connector = _connector(account.connector)
    if connector is None:
        raise ConfigError(
            f"account {name!r} uses connector {account.connector!r}, which this version of "
            "leadferry does not know"
        )
    return connector


def _update(
    request: Request,
    store: Store,
    user: User,
    name: str,
    form: Mapping[str, str],
    connector: type[Connector],
    group: FieldGroup,
    done: str,
) -> Response:
    errors = field_errors(connector, group.fields, form)
    if errors:
        return _account_page(request, store, user, name, errors=errors, form=form, status_code=422)
    update_account(store, name, {f.id: form[f.id] for f in group.fields if form.get(f.id)})
    return RedirectResponse(_account_url(name, done), status_code=303)


@router.post("/accounts/{name}/settings")
def edit_settings(
    request: Request, name: str, store: StoreDep, user: EditorDep, form: FormTextsDep
) -> Response:
    """Change the non-secret fields (base URL, time zone...)."""
    connector = _connector_or_refuse(store, name)
    return _update(
        request, store, user, name, form, connector, settings_fields(connector), "settings"
    )


@router.post("/accounts/{name}/secret")
def rotate_secret(
    request: Request, name: str, store: StoreDep, user: EditorDep, form: FormTextsDep
) -> Response:
    """Replace the secret fields; the account's datasets keep working with the new values."""
    connector = _connector_or_refuse(store, name)
    return _update(request, store, user, name, form, connector, secret_fields(connector), "secret")


@router.post("/accounts/{name}/rename")
def rename(
    request: Request, name: str, store: StoreDep, user: EditorDep, form: FormTextsDep
) -> Response:
    new_name = form.get("new_name", "")
    try:
        store.rename_account(name, new_name)
    except NotFoundError:
        raise
    except ConfigError as exc:  # invalid or taken
        return _account_page(
            request, store, user, name, errors={"new_name": str(exc)}, form=form, status_code=422
        )
    return RedirectResponse(_account_url(new_name, "renamed"), status_code=303)


@router.post("/accounts/{name}/remove")
def remove(request: Request, name: str, store: StoreDep, _user: EditorDep) -> Response:
    """Delete an account no dataset uses (the store refuses otherwise, saying how many do:
    the error handler shows its message).

    From the list (HTMX) the answer is empty, which removes the row; a form goes back to the list.
    """
    store.remove_account(name)
    if is_htmx(request):
        return Response(status_code=200)
    return RedirectResponse("/accounts", status_code=303)
