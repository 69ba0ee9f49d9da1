"""Vendors that misbehave on purpose: one quotes the request back in a 400, in every spelling it
could, another redirects to a host of its own; and every spelling of a secret, to look for."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from tests.conftest import serve_on_loopback

CANARY = "KEY-canary+/=123456"
"""The issue's key: `+`, `/` and `=` are all percent-encoded in a query string."""


def spellings(secret: str) -> set[str]:
    """The ways *secret* can be written in text: in clear, percent-encoded (upper and lower
    hex, a space as %20 or +), JSON-, XML- and Python-escaped."""
    percent = quote(secret, safe="")
    return {
        secret,
        percent,
        re.sub("%[0-9A-F]{2}", lambda code: code.group().lower(), percent),
        quote_plus(secret, safe=""),
        quote(secret, safe="/"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=True).replace("/", "\\/")[1:-1],
        html.escape(secret),
        repr(secret)[1:-1],
    }


def echo_app() -> FastAPI:
    """A vendor answering every request with 400 and the request quoted back: URL as sent and
    decoded, form body, headers; in plain text, JSON and XML."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def echo(request: Request, path: str) -> PlainTextResponse:
        body = (await request.body()).decode()
        seen = {
            "url": str(request.url),
            "query": dict(request.query_params),
            "body": body,
            "headers": dict(request.headers),
        }
        text = (
            f"Bad request {request.method} {request.url} {body}\n"
            f"{json.dumps(seen)}\n<url>{html.escape(str(request.url))}</url>"
        )
        return PlainTextResponse(text, status_code=400)

    return app


@dataclass
class Elsewhere:
    """The host a redirect points at: it records what reaches it."""

    url: str
    seen: list[str] = field(default_factory=list)


async def _record(elsewhere: Elsewhere, request: Request) -> PlainTextResponse:
    """Note the request, answer as LeadExec does when there are no leads."""
    elsewhere.seen.append(f"{request.url} {dict(request.headers)} {await request.body()!r}")
    return PlainTextResponse("<Leads querytotal='0'></Leads>")


def elsewhere_app(elsewhere: Elsewhere) -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def record(request: Request, path: str) -> PlainTextResponse:
        return await _record(elsewhere, request)

    return app


def redirect_app(target: str, elsewhere: Elsewhere | None = None) -> FastAPI:
    """A vendor that sends requests under /old/ on to *target*, query string and all; with
    *elsewhere*, it answers every other request itself, as that host would."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def redirect(request: Request, path: str) -> Response:
        if elsewhere is not None and not path.startswith("old/"):
            return await _record(elsewhere, request)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{target}/{path.removeprefix('old/')}{query}", status_code=307)

    return app


@contextmanager
def echoing_vendor() -> Iterator[str]:
    with serve_on_loopback(echo_app()) as url:
        yield url + "/"


@contextmanager
def redirecting_vendor() -> Iterator[tuple[str, Elsewhere]]:
    """A vendor on 127.0.0.1 redirecting to another host (localhost, another port), and what
    that host received."""
    elsewhere = Elsewhere("")
    with serve_on_loopback(elsewhere_app(elsewhere)) as there:
        elsewhere.url = there.replace("127.0.0.1", "localhost")
        with serve_on_loopback(redirect_app(elsewhere.url)) as here:
            yield here + "/old/", elsewhere


@contextmanager
def moving_vendor() -> Iterator[tuple[str, Elsewhere]]:
    """A vendor whose /old/ redirects to /new/ on its own host and port, and what /new/ got."""
    moved = Elsewhere("")
    app = FastAPI()
    with serve_on_loopback(app) as here:
        moved.url = here + "/new"
        app.mount("/", redirect_app(moved.url, moved))
        yield here + "/old/", moved
