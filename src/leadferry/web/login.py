"""Logging in and out of the web pages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from leadferry.auth import new_secret
from leadferry.web.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    NowDep,
    StoreDep,
    web_session,
)
from leadferry.web.templating import render

router = APIRouter(include_in_schema=False)

SESSION_LIFETIME = dt.timedelta(hours=12)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never redirect a login to another host."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    if web_session(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_secret()
    request.state.login_csrf = token
    response = render(request, "login.html", {"next": _safe_next(next), "error": None})
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.post("/login")
def login(
    request: Request,
    store: StoreDep,
    now: NowDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    throttle = request.app.state.throttle
    keys = [f"user:{username.strip().lower()}", f"address:{_address(request)}"]
    wait = throttle.reserve(keys, now)
    if wait is not None:
        seconds = max(1, int(wait.total_seconds()))
        return _form_again(
            request, next, f"Too many failed logins: try again in {seconds} s.", status_code=429
        )
    try:
        user = store.authenticate(username.strip(), password)
    except BaseException:
        throttle.failed(keys, now)
        raise
    if user is None:
        throttle.failed(keys, now)
        return _form_again(request, next, "Wrong user name or password.", status_code=401)
    throttle.succeeded(keys, forgiven=keys[:1])
    plain, _session = store.create_session(user.name, SESSION_LIFETIME)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        plain,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _form_again(request: Request, next_: str, error: str, status_code: int) -> Response:
    return render(
        request, "login.html", {"next": _safe_next(next_), "error": error}, status_code=status_code
    )


@router.post("/logout")
def logout(request: Request, store: StoreDep) -> Response:
    plain = request.cookies.get(SESSION_COOKIE)
    if plain:
        store.end_session(plain)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
