"""What routes depend on: the store, settings, the clock, and who is asking.

Pages authenticate with a session cookie; the REST API takes ``Authorization: Bearer lf_...``
tokens (or the page session, with its CSRF header). Role checks are dependencies, so a route
states the least role it needs in its signature: ``user: EditorDep``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData

from leadferry.auth import role_allows
from leadferry.settings import Settings
from leadferry.store import Store
from leadferry.store.users import User, WebSession
from leadferry.web.lookups import LookupCache

if TYPE_CHECKING:
    from leadferry.scheduler import Scheduler

SESSION_COOKIE = "leadferry_session"
LOGIN_CSRF_COOKIE = "leadferry_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))


class LoginRequired(Exception):  # noqa: N818 (a signal to the handler, not an error)
    """No valid session: pages redirect to the login form, the API answers 401."""


def get_store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_now(request: Request) -> dt.datetime:
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock()


def get_scheduler(request: Request) -> Scheduler:
    return request.app.state.scheduler  # type: ignore[no-any-return]


def get_vendor_client(request: Request) -> Any:
    return request.app.state.vendor_client


def get_lookups(request: Request) -> LookupCache:
    return request.app.state.lookups  # type: ignore[no-any-return]


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[dt.datetime, Depends(get_now)]
SchedulerDep = Annotated[Any, Depends(get_scheduler)]
"""The scheduler that takes Run Now requests (a ``Scheduler``; typed loosely for FastAPI)."""
VendorClientDep = Annotated[Any, Depends(get_vendor_client)]
"""The HTTP client for vendor calls (an ``httpx2.Client``), or None: each call opens its own."""
LookupsDep = Annotated[LookupCache, Depends(get_lookups)]
"""The app's lookups kept a few minutes per account (:mod:`leadferry.web.lookups`)."""


async def posted_form(request: Request) -> FormData:
    return await request.form()


async def posted_texts(request: Request) -> dict[str, str]:
    """The submitted form's text fields, trimmed (pasted keys often carry spaces)."""
    form = await request.form()
    return {
        key: value.strip()
        for key, value in form.items()
        if isinstance(value, str) and key != CSRF_FIELD
    }


FormDep = Annotated[FormData, Depends(posted_form)]
"""The posted form as sent: repeated controls (checkboxes) keep every value."""
FormTextsDep = Annotated[dict[str, str], Depends(posted_texts)]
"""The posted form's text fields, trimmed, one value each, without the CSRF token."""


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def web_session(request: Request) -> WebSession | None:
    """The page session of this request (looked up once per request)."""
    if not hasattr(request.state, "web_session"):
        plain = request.cookies.get(SESSION_COOKIE)
        request.state.web_session = get_store(request).get_session(plain) if plain else None
    return request.state.web_session  # type: ignore[no-any-return]


def current_user(request: Request) -> User:
    """The user behind a bearer token or a session cookie.

    Raises:
        LoginRequired: neither is valid.
    """
    if not hasattr(request.state, "user"):
        token = bearer_token(request)
        if token is not None:
            user = get_store(request).user_for_token(token)
        else:
            session = web_session(request)
            user = session.user if session else None
        if user is None:
            raise LoginRequired
        request.state.user = user
    return request.state.user  # type: ignore[no-any-return]


def require(role: str) -> Any:
    """A dependency that returns the current user if their role allows *role*, else 403."""

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not role_allows(user.role, role):
            raise HTTPException(
                status_code=403,
                detail=f"{user.name} is {_article(user.role)} {user.role}: "
                f"this needs the {role} role",
            )
        return user

    return Depends(check)


ViewerDep = Annotated[User, require("viewer")]
EditorDep = Annotated[User, require("editor")]
AdminDep = Annotated[User, require("admin")]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


async def csrf_guard(request: Request) -> None:
    """Refuse unsafe requests that ride on a cookie without the session's CSRF token.

    Bearer-token requests carry no ambient credential, so they need none. The login form has no
    session yet: it is checked against a double-submit cookie instead.
    """
    if request.method not in UNSAFE_METHODS or bearer_token(request) is not None:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # Starlette caches it: the route reads it again for free
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    session = web_session(request)
    expected = session.csrf_token if session else request.cookies.get(LOGIN_CSRF_COOKIE)
    if session is None and request.url.path != "/login":
        raise LoginRequired
    if not expected or not sent or not _same(sent, expected):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token: reload the page")


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())
