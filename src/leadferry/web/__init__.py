"""The web Data Center and the REST API: one FastAPI app, served by ``leadferry serve``.

``create_app`` wires the store, settings, clock and (when serving) the scheduler into
``app.state``; routes reach them through the dependencies in :mod:`leadferry.web.deps`.
Errors are handled here, once: a :class:`~leadferry.errors.LeadferryError` becomes JSON
``{"detail": ...}`` under ``/api/`` and a message on the page elsewhere.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException

from leadferry import __version__
from leadferry.clock import Clock, utc_now
from leadferry.errors import (
    BusyError,
    ConfigError,
    ConflictError,
    ConnectorError,
    LeadferryError,
    NotFoundError,
    QueryTimeoutError,
)
from leadferry.scrub import scrub
from leadferry.web.api.routing import encodable, without_input
from leadferry.web.deps import LoginRequired, ViewerDep, csrf_guard, current_user
from leadferry.web.lookups import LookupCache
from leadferry.web.templating import is_htmx, render
from leadferry.web.throttle import LoginThrottle

if TYPE_CHECKING:
    import httpx2
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from leadferry.scheduler import Scheduler
    from leadferry.settings import Settings
    from leadferry.store import Store

API_PREFIX = "/api/v1"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class ScrubbedJSONResponse(JSONResponse):
    """JSON whose text has every known secret masked: the last guard of every API answer."""

    def render(self, content: object) -> bytes:
        return scrub(super().render(content).decode()).encode()


def status_of(exc: LeadferryError) -> int:
    """The HTTP status an expected failure answers with."""
    for kind, status in (
        (NotFoundError, 404),
        (ConflictError, 409),
        (BusyError, 409),
        (ConfigError, 422),
        (ConnectorError, 502),
        (QueryTimeoutError, 504),
    ):
        if isinstance(exc, kind):
            return status
    return 500


def create_app(
    settings: Settings,
    store: Store,
    *,
    scheduler: Scheduler | None = None,
    clock: Clock = utc_now,
    vendor_client: httpx2.Client | None = None,
) -> FastAPI:
    """The app for *store*. Run Now goes to *scheduler* (serve's own); without one, the app
    keeps a scheduler of its own that only runs what is asked for.

    Vendor calls (Test connection, Load Preview, the own scheduler's runs) go through
    *vendor_client* when given (tests give a simulator's in-process client); otherwise each
    call opens a client of its own."""
    from leadferry.scheduler import Scheduler
    from leadferry.web import accounts, api, login, pages, tokens, users, wizard

    app = FastAPI(
        title="leadferry",
        version=__version__,
        description="Accounts, reports, datasets, runs and their history. Authenticate with "
        "`Authorization: Bearer lf_...` (create a token with `leadferry tokens create`).",
        openapi_url=None,  # served below, behind a login like everything else
        docs_url=None,  # Swagger UI would load from a CDN: the OpenAPI document is enough
        redoc_url=None,
        dependencies=[Depends(csrf_guard)],
        default_response_class=ScrubbedJSONResponse,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.scheduler = scheduler or Scheduler(store, settings, clock=clock, client=vendor_client)
    app.state.vendor_client = vendor_client
    app.state.lookups = LookupCache()
    app.state.clock = clock
    app.state.throttle = LoginThrottle()
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(login.router)
    app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(pages.router)
    app.include_router(wizard.router)
    app.include_router(accounts.router)
    app.include_router(users.router)
    app.include_router(tokens.router)
    _handle_errors(app)
    app.add_api_route(
        f"{API_PREFIX}/openapi.json", openapi_document, methods=["GET"], include_in_schema=False
    )
    app.add_middleware(SecurityHeaders)
    return app


def openapi_document(request: Request, _user: ViewerDep) -> JSONResponse:
    """The API's OpenAPI document, behind a login like everything else. It reads the app from
    the request, not from a closure: FastAPI keeps every route's callable in a process-wide
    cache, which would keep each app made by ``create_app`` (and its store) alive."""
    return JSONResponse(request.app.openapi())


class SecurityHeaders:
    """Every answer gets :data:`SECURITY_HEADERS` that it does not set itself. A plain ASGI
    middleware: ``@app.middleware("http")`` would pass each request through a task and
    memory streams, about a millisecond of CPU per request on this machine."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_secured)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def _handle_errors(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": "log in, or send Authorization: Bearer <API token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = "/login?next=" + quote(request.url.path, safe="/")
        if is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(LeadferryError)
    async def expected_failure(request: Request, exc: LeadferryError) -> Response:
        return _problem(request, status_of(exc), str(exc))

    # Starlette's own class: the router raises it for an unknown path, which must get the
    # HTML 404 page too (FastAPI's HTTPException is a subclass, also handled here).
    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found" and not _is_api(request):
            message = f"There is no page at {request.url.path}."
            # No route ran to look up who is logged in: the page's nav needs it.
            with contextlib.suppress(LoginRequired):
                await run_in_threadpool(current_user, request)
        return _problem(request, exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Never FastAPI's default: it echoes each refused value, which may be a password.
        errors = [encodable(without_input(error)) for error in exc.errors()]
        if _is_api(request):
            return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
        named = "; ".join(
            f"{error['loc'][-1]}: {error['msg']}" if error.get("loc") else str(error.get("msg"))
            for error in errors
        )
        return _problem(request, 422, f"invalid input: {named}")


def _problem(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error as JSON for the API, as a message on the page (or in its flash area) otherwise."""
    if _is_api(request):
        return ScrubbedJSONResponse({"detail": message}, status_code=status, headers=headers)
    if is_htmx(request):
        response = render(request, "_flash.html", {"error": message}, status_code=status)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render(request, "error.html", {"status": status, "error": message}, status_code=status)
