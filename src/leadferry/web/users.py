"""The Users page (admins only): add users, change their role or password, remove them.

Each change is a small form. HTMX posts get back the page's panel (``_users.html``) with a
message, or with each error next to its field; without JavaScript the same forms get the whole
page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from leadferry.auth import ROLES, check_password, check_role
from leadferry.errors import ConfigError, NotFoundError
from leadferry.store.records import check_user_name
from leadferry.web import status_of
from leadferry.web.deps import AdminDep, StoreDep
from leadferry.web.templating import is_htmx, render_panel

if TYPE_CHECKING:
    from leadferry.store import Store

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=200)]
Password = Annotated[str, Form(max_length=1000)]

PASSWORDS_DIFFER = "The two passwords differ: type the same one twice."


def _leave(request: Request, target: str) -> Response:
    """Send the browser elsewhere: after a change that ends this user's access to the page."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _problems(checks: Mapping[str, tuple[Callable[[str], object], str]]) -> dict[str, str]:
    """Run each ``(check, value)``; the ConfigError messages, by the key of the failed check."""
    errors: dict[str, str] = {}
    for key, (check, value) in checks.items():
        try:
            check(value)
        except ConfigError as exc:
            errors[key] = str(exc)
    return errors


def _users(
    request: Request,
    store: Store,
    *,
    message: str | None = None,
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "people": store.list_users(),
        "roles": ROLES,
        "message": message,
        "errors": errors or {},
        "form": form or {},
    }
    return render_panel(request, "users.html", "_users.html", context, status_code)


@router.get("/users")
def users_page(request: Request, store: StoreDep, _admin: AdminDep) -> Response:
    return _users(request, store)


@router.post("/users")
def add_user(
    request: Request,
    store: StoreDep,
    _admin: AdminDep,
    name: Text = "",
    role: Text = "viewer",
    password: Password = "",
    confirm: Password = "",
) -> Response:
    """Add a user; each rule broken is shown next to its field."""
    name = name.strip()
    errors = _problems(
        {
            "new-name": (check_user_name, name),
            "new-role": (check_role, role),
            "new-password": (check_password, password),
        }
    )
    if "new-password" not in errors and password != confirm:
        errors["new-confirm"] = PASSWORDS_DIFFER
    if not errors:
        try:
            store.add_user(name, password, role)
        except ConfigError as exc:  # the name is taken
            errors["new-name"] = str(exc)
        else:
            return _users(request, store, message=f"Added {name} as {role}.")
    form = {"name": name, "role": role}
    return _users(request, store, errors=errors, form=form, status_code=422)


@router.post("/users/{name}/role")
def change_role(
    request: Request, name: str, store: StoreDep, admin: AdminDep, role: Text = ""
) -> Response:
    """Give a user another role (the store refuses to demote the last admin)."""
    try:
        store.set_role(name, role)
    except NotFoundError:
        raise
    except ConfigError as exc:
        return _users(request, store, errors={f"role-{name}": str(exc)}, status_code=422)
    if name == admin.name and role != "admin":
        return _leave(request, "/")
    article = "an" if role[:1] in "aeiou" else "a"
    return _users(request, store, message=f"{name} is now {article} {role}.")


@router.post("/users/{name}/password")
def reset_password(
    request: Request,
    name: str,
    store: StoreDep,
    admin: AdminDep,
    password: Password = "",
    confirm: Password = "",
) -> Response:
    """Set a user's password; their web sessions end (their API tokens keep working)."""
    errors = _problems({f"password-{name}": (check_password, password)})
    if not errors and password != confirm:
        errors[f"confirm-{name}"] = PASSWORDS_DIFFER
    if errors:
        return _users(request, store, errors=errors, status_code=422)
    store.set_password(name, password)
    if name == admin.name:  # this session has just ended with the others
        return _leave(request, "/login")
    return _users(request, store, message=f"Password of {name} changed: their sessions ended.")


@router.post("/users/{name}/remove")
def remove_user(request: Request, name: str, store: StoreDep, admin: AdminDep) -> Response:
    """Remove a user with their tokens and sessions (never the last admin)."""
    try:
        store.remove_user(name)
    except NotFoundError:
        raise
    except ConfigError as exc:
        return _users(
            request, store, errors={f"remove-{name}": str(exc)}, status_code=status_of(exc)
        )
    if name == admin.name:
        return _leave(request, "/login")
    return _users(request, store, message=f"Removed {name}.")
