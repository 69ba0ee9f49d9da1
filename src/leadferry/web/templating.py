"""Jinja2 templates, with what every page needs: the user, the CSRF token, formatting filters.

Templates are full pages (``accounts.html``) or HTMX fragments (``_account_rows.html``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from leadferry import __version__
from leadferry.scrub import scrub
from leadferry.web.deps import CSRF_FIELD, LOGIN_CSRF_COOKIE, web_session

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _local(value: dt.datetime | None, tz: str | ZoneInfo | None = None) -> str:
    """``2026-11-23 06:00 PST``: a moment for people, in *tz* (UTC when not given)."""
    if value is None:
        return ""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz or dt.UTC
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


templates.env.filters["local"] = _local
templates.env.filters["seconds"] = _seconds
templates.env.filters["count"] = _count
templates.env.globals["version"] = __version__


def csrf_token(request: Request) -> str:
    """The token forms and HTMX requests must send back: the session's, or before login the
    double-submit cookie's (set by the login page)."""
    session = web_session(request)
    if session is not None:
        return session.csrf_token
    return getattr(request.state, "login_csrf", None) or request.cookies.get(LOGIN_CSRF_COOKIE, "")


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Any:
    """Render template *name* with the request's user and CSRF token (``csrf_field`` is the
    hidden input every form carries), every secret masked in the page: the last guard of
    every page, in one pass over it (the scrubber knows a secret in its HTML-escaped and
    percent-encoded spellings too)."""
    token = csrf_token(request)
    values = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf_token": token,
        "csrf_field": Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">'),
        **(context or {}),
    }
    page = templates.get_template(name).render(values)
    return HTMLResponse(scrub(page), status_code=status_code)


def render_panel(
    request: Request, page: str, panel: str, context: Mapping[str, Any], status_code: int
) -> Response:
    """The panel alone for HTMX (it replaces the one on the page), else the whole page."""
    return render(request, panel if is_htmx(request) else page, dict(context), status_code)  # type: ignore[no-any-return]


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"
