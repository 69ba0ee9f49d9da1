"""Simulator of the AvidTrak call-tracking API, the API of the AvidTrak connector.

An independent implementation of the vendor spec (shared/specs/vendor-apis.md, section 3; what
it reconstructs is in docs/connectors.md): it shares nothing with the connector, so a misreading on
either side shows up as a failing test. ``leadferry simulate avidtrak`` serves :func:`create_app`.
Where the spec is silent, the choices below are ours [reconstructed] and are listed as such.

Requests: ``GET {anything}/webservice/api.php`` with query parameters, so a base URL with a path
(a white-label reseller's) works; or ``POST`` with the same names as a form, which override the
query string (PHP's ``$_REQUEST``). Names are exact (lower case); empty values count as missing.

- ``format``: ``json`` (also when missing) or ``xml``, any case; else code 6, answered in JSON.
- ``pincode``: missing, code 3; not one of ``Settings.pin``, code 4 (401 in JSON, see below).
- ``method``: ``offline_portal_calls`` (alias ``all_lite_calls``, the SOAP name) or ``geo_data``;
  anything else or missing, code 404.
- ``startdate`` and ``enddate`` (both required): ``YYYY-mm-dd hh:mm:ss`` or ``YYYY-mm-dd`` (a start
  at 00:00:00, an end at 23:59:59), wall-clock times in ``Settings.timezone``. The end is included.
  Offline calls filter on ``call_date``; Geographical Data on whole days (the dates of the bounds).
- ``page`` (from 1, default 1), ``perpage`` (default 20; above 1000 counts as 1000).
- ``orderby``: a column of the method's rows (default ``call_date`` / ``date``); numeric columns
  sort as numbers, ties keep the default order. ``ordertype``: ``asc`` (default) or ``desc``
  (any case).
- Checked in that order: format, pincode, method, then parameters. A missing, unreadable or
  impossible date, a bad page, perpage, orderby or ordertype: code 0 "Unknown Error", data null.
  A valid request with no rows (an empty window, or a page past the last): the same code 0, as the
  spec documents; the envelope cannot tell the two apart, exactly like the real API.

Answers are HTTP 200, errors included. JSON ``{"code", "status", "data"}`` in PHP's
``json_encode`` style (compact, ``\\/``, non-ASCII as ``\\uXXXX``), rows as objects whose values are
all strings (PHP encoding MySQL rows) unless ``typed-json``. XML ``<?xml ...?><response><code/>
<status/><data><row><column>value</column>...</row></data></response>``, ``<data/>`` when null.

Codes [reconstructed where the spec's example and its list disagree]: XML follows the documented
list (1 Success, 0, 3, 4, 6, 404). JSON follows the examples where there is one (200 Success, 401
Authentication Failed) and the list elsewhere. A client must accept both.

Variants (``Settings.variant``, repeatable, see :data:`VARIANTS`): ``documented-codes`` makes JSON
use 1 and 4 too; ``published-errors`` writes XML errors as the vendor's published example does,
literally (code 401 for a bad pin, ``<data><data/></response>``: not well-formed);
``paging-info`` adds ``total``, ``page`` and ``perpage`` to successes (off by default: the
documented envelope has no paging fields; clients page until a short page); ``typed-json`` sends
numeric columns as JSON numbers.

Faults, drawn from one seeded ``random.Random`` per app: ``latency_ms`` delays every answer;
``fail_rate`` answers HTTP 500 or 503 (with ``Retry-After: 1``). ``GET /__health`` answers ``ok``
and is never faulted. Any other path is an HTTP 404.

What the account holds (calls, callers, campaigns, Geographical Data): see :class:`Simulation`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, field_validator

from leadferry.simulators import SimulatedAccount
from leadferry.simulators._avidtrak_data import (
    DECIMAL_COLUMNS,
    GEO_COLUMNS,
    GEO_METHOD,
    INTEGER_COLUMNS,
    OFFLINE_COLUMNS,
    OFFLINE_METHODS,
    Simulation,
)
from leadferry.simulators._parsing import ZoneName, request_values
from leadferry.simulators.faults import FailRate, Faults, LatencyMs, Seed, simulator_app

logger = logging.getLogger(__name__)

ENDPOINT = "/webservice/api.php"
DEFAULT_PERPAGE = 20
MAX_PERPAGE = 1000
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"

# The documented codes, and their status texts.
SUCCESS, UNKNOWN_ERROR, AUTH_REQUIRED, AUTH_FAILED, BAD_FORMAT, BAD_METHOD = 1, 0, 3, 4, 6, 404
STATUS = {
    SUCCESS: "Success",
    UNKNOWN_ERROR: "Unknown Error",
    AUTH_REQUIRED: "Authentication Required",
    AUTH_FAILED: "Authentication Failed",
    BAD_FORMAT: "Invalid Response Format",
    BAD_METHOD: "Invalid Request Method",
}
# What the vendor's JSON examples show instead (``{"code": 200, "status": "Success", ...}``).
JSON_EXAMPLE_CODES = {SUCCESS: 200, AUTH_FAILED: 401}


class Variant(StrEnum):
    """Another plausible form of a reconstructed behaviour, played on request (``--variant``)."""

    DOCUMENTED_CODES = "documented-codes"
    PUBLISHED_ERRORS = "published-errors"
    PAGING_INFO = "paging-info"
    TYPED_JSON = "typed-json"


VARIANTS = {
    Variant.DOCUMENTED_CODES: "JSON answers use the documented codes 1 (Success) and 4 "
    "(Authentication Failed) instead of the examples' 200 and 401",
    Variant.PUBLISHED_ERRORS: "XML errors as the vendor publishes them, literally: "
    "<response><code>401</code><status>...</status><data><data/></response> "
    "(code 401 for a bad pin, and not well-formed)",
    Variant.PAGING_INFO: "successful answers add total, page and perpage",
    Variant.TYPED_JSON: "JSON sends numeric columns as numbers instead of strings",
}


class Settings(BaseModel):
    """Options of the AvidTrak simulator (each becomes a ``leadferry simulate avidtrak`` flag)."""

    seed: Seed = 1
    calls: int = Field(
        default=5000, ge=0, le=1_000_000, description="Offline portal calls over the period."
    )
    days: int = Field(
        default=30, ge=1, description="Calls are spread over the last DAYS days, up to now."
    )
    pin: list[str] = Field(
        default_factory=lambda: ["demo-pin"], description="An accepted pin code (repeatable)."
    )
    timezone: ZoneName = Field(
        default="UTC", description="The account's time zone: dates are given and returned in it."
    )
    empty_days: list[str] = Field(
        default_factory=list,
        description="A day (YYYY-MM-DD, in the account's zone) with no calls at all (repeatable).",
    )
    variant: list[Variant] = Field(
        default_factory=list,
        description="Play a reconstructed behaviour another plausible way (repeatable): "
        + "; ".join(f"{name}: {meaning}" for name, meaning in VARIANTS.items()),
    )
    latency_ms: LatencyMs = 0
    fail_rate: FailRate = 0

    @field_validator("empty_days")
    @classmethod
    def _iso_days(cls, values: list[str]) -> list[str]:
        days = []
        for value in values:
            try:
                days.append(date.fromisoformat(value.strip()).isoformat())
            except ValueError as exc:
                raise ValueError(f"not a YYYY-MM-DD date: {value}") from exc
        return days


# ---------------------------------------------------------------------------------------------
# Dates

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2}))?")


def parse_date(text: str, end: bool = False) -> datetime:
    """Read ``YYYY-mm-dd hh:mm:ss`` or ``YYYY-mm-dd`` as a naive local time.

    A bare day starts at 00:00:00, or, when ``end``, ends at 23:59:59 (the end is inclusive).

    Raises:
        ValueError: another shape, or not a real date or time.
    """
    m = _DATE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a date: {text!r}")
    year, month, day, hour, minute, second = m.groups()
    clock = (hour, minute, second) if hour is not None else ("23", "59", "59") if end else ()
    parts = [int(p) for p in (year, month, day, *clock)]
    return datetime(*parts)  # noqa: DTZ001 - the vendor's dates are naive wall-clock times


# ---------------------------------------------------------------------------------------------
# Answers


class _Reply(Exception):
    """An answer other than rows: a documented code, with data null."""

    def __init__(self, code: int) -> None:
        super().__init__(STATUS[code])
        self.code = code


def _php_json(value: Any) -> str:
    """JSON the way PHP's ``json_encode`` writes it: compact, ASCII only, ``/`` escaped."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/")


def _typed(column: str, value: str) -> Any:
    if column in INTEGER_COLUMNS:
        return int(value)
    if column in DECIMAL_COLUMNS:
        return float(value)
    return value


def _render(
    fmt: str,
    code: int,
    shown_code: int,
    rows: Sequence[tuple[str, ...]] | None = None,
    columns: Sequence[str] = (),
    paging: dict[str, int] | None = None,
    typed: bool = False,
    published: bool = False,
) -> Response:
    """The envelope around ``rows`` (None: ``data`` null) with ``shown_code`` as its code;
    ``published``: an XML ``data`` null as the vendor's example writes it, never closed."""
    paging = paging or {}
    if fmt == "xml":
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<response>',
            f"<code>{shown_code}</code><status>{STATUS[code]}</status>",
            *(f"<{name}>{number}</{name}>" for name, number in paging.items()),
        ]
        if rows is None:
            parts.append("<data><data/>" if published else "<data/>")
        else:
            parts.append("<data>")
            for row in rows:
                cells = (f"<{c}>{escape(v)}</{c}>" for c, v in zip(columns, row, strict=True))
                parts.append(f"<row>{''.join(cells)}</row>")
            parts.append("</data>")
        parts.append("</response>")
        return Response("".join(parts), media_type=XML_TYPE)
    head = f'{{"code":{shown_code},"status":{_php_json(STATUS[code])}'
    head += "".join(f',"{name}":{number}' for name, number in paging.items())
    if rows is None:
        return Response(head + ',"data":null}', media_type=JSON_TYPE)
    convert: Callable[[str, str], Any] = _typed if typed else lambda _c, v: v
    data = ",".join(
        _php_json({c: convert(c, v) for c, v in zip(columns, row, strict=True)}) for row in rows
    )
    return Response(f'{head},"data":[{data}]}}', media_type=JSON_TYPE)


class _Orderer:
    """Rows of a window in the requested order; sorts by other columns are cached for paging."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self._sorted = lru_cache(maxsize=16)(self._sort)

    def _sort(self, method: str, lo: int, hi: int, column: str, desc: bool) -> tuple[int, ...]:
        at = (GEO_COLUMNS if method == GEO_METHOD else OFFLINE_COLUMNS).index(column)
        convert: Callable[[str], Any] = str
        if column in INTEGER_COLUMNS:
            convert = int
        elif column in DECIMAL_COLUMNS:
            convert = Decimal
        keys = [convert(row[at]) for row in self.sim.rows(method, range(lo, hi))]
        return tuple(sorted(range(lo, hi), key=lambda i: (keys[i - lo], i), reverse=desc))

    def order(self, method: str, window: range, column: str, desc: bool) -> Sequence[int]:
        if column in ("call_date", "call_id", "date"):  # the order the rows are kept in
            return window[::-1] if desc else window
        return self._sorted(method, window.start, window.stop, column, desc)


def _positive(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name, str(default))
    if not text.isdigit() or int(text) < 1:
        raise _Reply(UNKNOWN_ERROR)
    return int(text)


def _query(
    sim: Simulation, orderer: _Orderer, method: str, params: dict[str, str]
) -> tuple[list[tuple[str, ...]], dict[str, int]]:
    """The page's rows and its paging numbers; raises _Reply for bad parameters or no rows."""
    try:
        start = parse_date(params["startdate"])
        end = parse_date(params["enddate"], end=True)
    except (KeyError, ValueError):
        raise _Reply(UNKNOWN_ERROR) from None
    page = _positive(params, "page", 1)
    perpage = min(_positive(params, "perpage", DEFAULT_PERPAGE), MAX_PERPAGE)
    geo = method == GEO_METHOD
    column = params.get("orderby", "date" if geo else "call_date")
    ordertype = params.get("ordertype", "asc").lower()
    if column not in (GEO_COLUMNS if geo else OFFLINE_COLUMNS) or ordertype not in ("asc", "desc"):
        raise _Reply(UNKNOWN_ERROR)
    window = sim.geo_range(start, end) if geo else sim.call_range(start, end)
    ordered = orderer.order(method, window, column, ordertype == "desc")
    chosen = ordered[(page - 1) * perpage : page * perpage]
    logger.debug(
        "%s: rows %d to %d of %d", method, (page - 1) * perpage, page * perpage, len(ordered)
    )
    if not chosen:
        raise _Reply(UNKNOWN_ERROR)  # "no data found"
    return sim.rows(method, chosen), {"total": len(ordered), "page": page, "perpage": perpage}


def create_app(settings: Settings, now: datetime | None = None) -> FastAPI:
    """Build the simulator app; ``app.state.simulation`` is its :class:`Simulation`.

    Args:
        settings: the simulated account and its faults.
        now: an aware datetime pinning the simulated clock (calls end there); None reads the clock.

    Raises:
        ValueError: ``now`` is naive.
    """
    sim = Simulation(settings, now)
    orderer = _Orderer(sim)
    faults = Faults(settings, f"avidtrak-faults:{settings.seed}")
    pins = frozenset(settings.pin)
    app = simulator_app("AvidTrak (simulated)")
    app.state.simulation = sim

    variants = set(settings.variant)
    published = Variant.PUBLISHED_ERRORS in variants

    def shown(code: int, fmt: str) -> int:
        if fmt == "json" and Variant.DOCUMENTED_CODES not in variants:
            return JSON_EXAMPLE_CODES.get(code, code)
        if fmt == "xml" and published and code == AUTH_FAILED:
            return JSON_EXAMPLE_CODES[code]
        return code

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def api(request: Request) -> Response:
        if not request.url.path.endswith(ENDPOINT):
            return HTMLResponse("<h1>Not Found</h1>", 404)
        fault = await faults.meet(
            lambda status, headers: HTMLResponse(
                f"<h1>{HTTPStatus(status).phrase}</h1>", status, headers
            )
        )
        if fault is not None:
            return fault
        params = await request_values(request)
        fmt = params.get("format", "json").lower()
        if fmt not in ("json", "xml"):
            return _render("json", BAD_FORMAT, shown(BAD_FORMAT, "json"), published=published)
        method = params.get("method", "")
        try:
            if "pincode" not in params:
                raise _Reply(AUTH_REQUIRED)
            if params["pincode"] not in pins:
                raise _Reply(AUTH_FAILED)
            if method not in (*OFFLINE_METHODS, GEO_METHOD):
                raise _Reply(BAD_METHOD)
            rows, paging = _query(sim, orderer, method, params)
        except _Reply as reply:
            return _render(fmt, reply.code, shown(reply.code, fmt), published=published)
        columns = GEO_COLUMNS if method == GEO_METHOD else OFFLINE_COLUMNS
        return _render(
            fmt,
            SUCCESS,
            shown(SUCCESS, fmt),
            rows,
            columns,
            paging if Variant.PAGING_INFO in variants else None,
            typed=Variant.TYPED_JSON in variants,
        )

    return app


def account(settings: Settings, url: str) -> SimulatedAccount:
    """The account that reads this simulator at *url* (a white-label reseller's path, as the
    endpoint may sit under any path) with its first pin code."""
    return SimulatedAccount(
        {
            "base_url": f"{url}/white-label/calls",
            "pin_code": settings.pin[0],
            "timezone": settings.timezone,
        }
    )


__all__ = [
    "AUTH_FAILED",
    "AUTH_REQUIRED",
    "BAD_FORMAT",
    "BAD_METHOD",
    "ENDPOINT",
    "GEO_COLUMNS",
    "MAX_PERPAGE",
    "OFFLINE_COLUMNS",
    "STATUS",
    "SUCCESS",
    "UNKNOWN_ERROR",
    "Settings",
    "VARIANTS",
    "Simulation",
    "Variant",
    "account",
    "create_app",
    "parse_date",
]
