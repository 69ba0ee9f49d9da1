"""Simulator of ClickPoint SalesExec's REST API, the API of the SalesExec connector.

An independent implementation of the vendor spec (shared/specs/vendor-apis.md, section 2; what
it reconstructs is in docs/connectors.md): it shares nothing with the connector, so a misreading on
either side shows up as a failing test. ``leadferry simulate salesexec`` serves :func:`create_app`.
Almost all of the API is reconstructed; its names are in :data:`REPORT_PATHS`, :data:`TOKEN_PATH`
and the field tuples of :mod:`leadferry.simulators._salesexec_data`.

Login: ``POST /token`` with the form ``grant_type=password&username=U&password=P`` answers
``{"access_token": "<guid>", "token_type": "bearer", "expires_in": TTL, "userName": "U"}``. A
``grant_type`` other than ``password`` (or none): 400 ``{"error": "unsupported_grant_type"}``.
Unknown user or wrong password (both case-sensitive): 400 ``{"error": "invalid_grant",
"error_description": "The user name or password is incorrect."}``. Every login issues a new token.

Variants (``Settings.variant``, repeatable, see :data:`VARIANTS`): ``bearer-only`` accepts the
token only as ``Authorization: Bearer``; ``login-401`` refuses a bad login with HTTP 401.

Reports: ``GET /api/...`` (paths matched case-insensitively, as ASP.NET routes; an unknown one is
404 ``{"Message": "No HTTP resource was found ..."}``), sending the token as ``AuthToken: <token>``
or ``Authorization: Bearer <token>``; missing, unknown or expired: 401 ``{"Message":
"Authorization has been denied for this request."}``. With ``revoke_rate``, a report request
finds its token gone that often (a token expired early, revoked, or a vendor restart), so a
client's renewal is exercised mid-run. Query names are case-insensitive and an
empty value counts as missing.

- ``startDate`` and ``endDate`` are required for every report but the awaiting-import count (which
  ignores them). ISO 8601, or a US spelling .NET reads (``11/20/2026``, ``2014/01/05``,
  ``11/20/26``, taken as UTC): ``2026-11-20``, ``2026-11-20T08:00``, ``2026-11-20T08:00:00Z``,
  ``...+00:00``, with 1 to 7 fractional digits; no offset means UTC, another offset is converted.
  Start inclusive, end exclusive, compared to the 100 ns tick; end before start: 400.
- ``leadTypeUID`` (integer) filters on the lead's type; an unknown one selects nothing (the
  awaiting-import count answers a row with ``Count`` 0 for it).
- ``page`` (1-based, default 1) and ``pageSize`` (default 500; above 1000 it is 1000, and the
  answer's ``PageSize`` says so). A page past the end has no results.
- Anything unparsable: 400 ``{"Message": "..."}``.

Answers: ``{"TotalCount": n, "Page": p, "PageSize": s, "Results": [...]}``, rows in the order of
the report's timestamp, then its UID (Branch Lead Count: by BranchUID, leaving out branches with
no lead in the window; awaiting-import count: by LeadTypeUID, every lead type, zeros included).

Faults, drawn from one ``random.Random(seed)`` per app, on every route but ``GET /__health``:
``latency_ms`` delays every answer; ``rate_limit`` (requests per second, a token bucket holding
one second's worth) answers 429 with ``Retry-After`` in whole seconds; ``fail_rate`` answers 500,
or 503 with ``Retry-After: 1``.

What the data is made of: see :class:`Simulation`.
"""

from __future__ import annotations

import json
import logging
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from leadferry.clock import utc_now
from leadferry.simulators import SimulatedAccount
from leadferry.simulators._dotnet import parse_us_date
from leadferry.simulators._salesexec_data import (
    ACTION_FIELDS,
    AWAITING_FIELDS,
    BRANCH_COUNT_FIELDS,
    CLOSED_FIELDS,
    LEAD_FIELDS,
    REPORT_DATE_FIELDS,
    TICKS_PER_SECOND,
    Simulation,
    format_ticks,
    to_ticks,
)
from leadferry.simulators.faults import FailRate, Faults, LatencyMs, RateLimit, Seed, simulator_app

logger = logging.getLogger(__name__)

TOKEN_PATH = "/token"
REPORT_PATHS: dict[str, str] = {  # report -> path (reconstructed)
    "actions": "/api/Actions",
    "leads": "/api/Leads",
    "branch_lead_count": "/api/Reports/BranchLeadCount",
    "closed_leads": "/api/Leads/Closed",
    "awaiting_import_count": "/api/Leads/AwaitingImport/Count",
    "last_updated_leads": "/api/Leads/LastUpdated",
}
REPORT_FIELDS: dict[str, tuple[str, ...]] = {
    "actions": ACTION_FIELDS,
    "leads": LEAD_FIELDS,
    "branch_lead_count": BRANCH_COUNT_FIELDS,
    "closed_leads": CLOSED_FIELDS,
    "awaiting_import_count": AWAITING_FIELDS,
    "last_updated_leads": LEAD_FIELDS,
}
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000
DENIED = "Authorization has been denied for this request."
BAD_LOGIN = "The user name or password is incorrect."
JSON_TYPE = "application/json; charset=utf-8"
_ROUTES = {path.lower(): report for report, path in REPORT_PATHS.items()}
_FAULT_MESSAGES = {
    429: "Too many requests.",
    500: "An error has occurred.",
    503: "The service is unavailable.",
}


class Variant(StrEnum):
    """Another plausible form of a reconstructed behaviour, played on request (``--variant``)."""

    BEARER_ONLY = "bearer-only"
    LOGIN_401 = "login-401"


VARIANTS = {
    Variant.BEARER_ONLY: "calls must carry Authorization: Bearer <token> (the OAuth convention); "
    "an AuthToken header alone is refused with 401",
    Variant.LOGIN_401: "a wrong username or password answers HTTP 401 (not 400) invalid_grant",
}


class Settings(BaseModel):
    """Options of the SalesExec simulator (each becomes a ``leadferry simulate salesexec`` flag)."""

    seed: Seed = 1
    leads: int = Field(
        default=5000, ge=0, description="Leads created over the period, over all lead types."
    )
    days: int = Field(
        default=30, ge=1, description="Data is spread over the last DAYS days up to now."
    )
    users: list[str] = Field(
        default_factory=lambda: ["demo:demo-pass"],
        description="An accepted login as username:password (repeatable).",
    )
    token_ttl: int = Field(default=86399, ge=1, description="Seconds a token lives.")
    latency_ms: LatencyMs = 0
    rate_limit: RateLimit = 0
    fail_rate: FailRate = 0
    revoke_rate: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Probability that a report request finds its token gone before its "
        "advertised lifetime (expired early, revoked, the vendor restarted): 401.",
    )
    awaiting_import: int = Field(
        default=37, ge=0, description="Leads awaiting import, spread over the lead types."
    )
    variant: list[Variant] = Field(
        default_factory=list,
        description="Play a reconstructed behaviour another plausible way (repeatable): "
        + "; ".join(f"{name}: {meaning}" for name, meaning in VARIANTS.items()),
    )

    @field_validator("users")
    @classmethod
    def _user_and_password(cls, value: list[str]) -> list[str]:
        for login in value:
            name, colon, _ = login.partition(":")
            if not name or not colon:
                raise ValueError(f"a login is username:password, not {login!r}")
        return value

    def logins(self) -> dict[str, str]:
        """Username -> password (a password may hold colons; the first one splits)."""
        pairs = (login.partition(":") for login in self.users)
        return {name: password for name, _, password in pairs}


# ---------------------------------------------------------------------------------------------
# Dates and parameters

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def parse_ticks(text: str) -> int:
    """An ISO 8601 date or time (no offset: UTC) as 100 ns ticks since 1970, keeping 7 digits;
    also the US spellings .NET model binding reads (``2014/01/05``, ``11/20/26``), as UTC.

    Raises:
        ValueError: neither, or not a real date.
    """
    m = _ISO.fullmatch(text.strip())
    if m is None:
        us = parse_us_date(text)
        if us is None:
            raise ValueError(f"not an ISO 8601 date: {text!r}")
        return to_ticks(us)
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = m.groups()
    if sign and (int(off_h) > 23 or int(off_m) > 59):
        raise ValueError(f"bad offset in {text!r}")
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
        tzinfo=UTC,
    )  # fmt: skip
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        moment -= offset if sign == "+" else -offset
    return to_ticks(moment) + int((fraction or "0").ljust(7, "0"))


class _Reject(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status, self.body = status, body


def _bad(message: str) -> _Reject:
    return _Reject(400, {"Message": message})


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status, headers, media_type=JSON_TYPE)


def _integer(params: dict[str, str], name: str, positive: bool = False) -> int | None:
    if name.lower() not in params:
        return None
    raw = params[name.lower()]
    if not re.fullmatch(r"[+-]?\d{1,18}", raw) or (positive and int(raw) < 1):
        raise _bad(f"The value '{raw}' is not valid for {name}.")
    return int(raw)


def _date(params: dict[str, str], name: str) -> int:
    if name.lower() not in params:
        raise _bad(f"{name} is required (ISO 8601 UTC, e.g. 2026-11-20T00:00:00Z).")
    try:
        return parse_ticks(params[name.lower()])
    except ValueError:
        raise _bad(
            f"The value '{params[name.lower()]}' is not valid for {name}:"
            " use ISO 8601 UTC, e.g. 2026-11-20T00:00:00Z."
        ) from None


def _report_page(sim: Simulation, report: str, params: dict[str, str]) -> dict[str, Any]:
    """The envelope of one page; raises _Reject for a bad parameter."""
    start = end = None
    if REPORT_DATE_FIELDS[report] is not None:
        start, end = _date(params, "startDate"), _date(params, "endDate")
        if end < start:
            raise _bad("endDate must not be before startDate.")
    lead_type = _integer(params, "leadTypeUID")
    page = _integer(params, "page", positive=True) or 1
    size = min(_integer(params, "pageSize", positive=True) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    total, rows = sim.page(report, start, end, lead_type, (page - 1) * size, size)
    logger.debug("%s: page %d of %d rows", report, page, total)
    return {"TotalCount": total, "Page": page, "PageSize": size, "Results": rows}


# ---------------------------------------------------------------------------------------------
# HTTP


@dataclass
class _Session:
    user: str
    expires: datetime


class _Tokens:
    """Issued tokens and when they expire, by the app's clock."""

    def __init__(self, ttl: int, clock: Callable[[], datetime], seed: int) -> None:
        self.ttl, self.clock = ttl, clock
        self.rng = random.Random(f"salesexec-tokens:{seed}")
        self.sessions: dict[str, _Session] = {}

    def issue(self, user: str) -> str:
        now = self.clock()
        self.sessions = {t: s for t, s in self.sessions.items() if s.expires > now}
        token = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.sessions[token] = _Session(user, now + timedelta(seconds=self.ttl))
        return token

    def revoke(self, token: str | None) -> None:
        self.sessions.pop(token or "", None)

    def user(self, token: str | None) -> str | None:
        """The token's user, or None when it is missing, unknown or expired."""
        session = self.sessions.get(token or "")
        if session is None or session.expires <= self.clock():
            return None
        return session.user


def _token_of(request: Request, bearer_only: bool) -> str | None:
    if not bearer_only and (token := request.headers.get("authtoken", "").strip()):
        return token
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _shifted_clock(shift: timedelta) -> Callable[[], datetime]:
    return lambda: utc_now() + shift


def create_app(
    settings: Settings,
    now: datetime | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the simulator app; ``app.state.simulation`` is its :class:`Simulation`.

    Args:
        settings: the simulated account and its faults.
        now: an aware datetime pinning the data's clock (the data ends there); None reads the clock.
        clock: what tells the time for token expiry; by default the real clock shifted so that it
            reads ``now`` when the app is built (tests pass a clock they can move forward).

    Raises:
        ValueError: ``now`` is naive.
    """
    sim = Simulation(settings, now)
    if clock is None:
        clock = _shifted_clock(sim.now - utc_now())
    tokens = _Tokens(settings.token_ttl, clock, settings.seed)
    logins = settings.logins()
    faults = Faults(settings, settings.seed, settings.rate_limit)
    app = simulator_app("SalesExec (simulated)")
    app.state.simulation = sim

    async def fault() -> Response | None:
        return await faults.meet(
            lambda status, headers: _json(status, {"Message": _FAULT_MESSAGES[status]}, headers)
        )

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        if failed := await fault():
            return failed
        async with request.form() as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if fields.get("grant_type") != "password":
            return _json(400, {"error": "unsupported_grant_type"})
        user, password = fields.get("username", ""), fields.get("password", "")
        if not user or logins.get(user) != password:
            status = 401 if Variant.LOGIN_401 in settings.variant else 400
            return _json(status, {"error": "invalid_grant", "error_description": BAD_LOGIN})
        body = {
            "access_token": tokens.issue(user),
            "token_type": "bearer",
            "expires_in": settings.token_ttl,
            "userName": user,
        }
        return _json(200, body, {"Cache-Control": "no-cache", "Pragma": "no-cache"})

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def report(request: Request, path: str) -> Response:
        if failed := await fault():
            return failed
        name = _ROUTES.get("/api/" + path.lower().rstrip("/"))
        if name is None:
            message = f"No HTTP resource was found that matches the request URI '{request.url}'."
            return _json(404, {"Message": message})
        if request.method != "GET":
            message = f"The requested resource does not support http method '{request.method}'."
            return _json(405, {"Message": message}, {"Allow": "GET"})
        token = _token_of(request, Variant.BEARER_ONLY in settings.variant)
        if faults.happens(settings.revoke_rate):
            tokens.revoke(token)
        if tokens.user(token) is None:
            return _json(401, {"Message": DENIED}, {"WWW-Authenticate": "Bearer"})
        pairs = request.query_params.multi_items()
        params = {k.lower(): v.strip() for k, v in reversed(pairs) if v.strip()}
        try:
            return _json(200, _report_page(sim, name, params))
        except _Reject as exc:
            return _json(exc.status, exc.body)

    return app


def account(settings: Settings, url: str) -> SimulatedAccount:
    """The account that reads this simulator at *url* with its first login."""
    username, password = settings.users[0].split(":", 1)
    return SimulatedAccount({"base_url": url, "username": username, "password": password})


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "REPORT_FIELDS",
    "REPORT_PATHS",
    "TICKS_PER_SECOND",
    "TOKEN_PATH",
    "VARIANTS",
    "Settings",
    "Simulation",
    "Variant",
    "account",
    "create_app",
    "format_ticks",
    "parse_ticks",
    "to_ticks",
]
