"""What the Data Center and the dataset page share: dataset URLs, flash messages after a
redirect, the warehouse as pages read it, and whether a dataset is busy."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.convertors import Convertor, register_url_convertor

from leadferry.settings import Settings
from leadferry.warehouse import WarehouseReader, open_warehouse
from leadferry.web.templating import render

FLASH_COOKIE = "leadferry_flash"
PAGE_LOCK_TIMEOUT = 0.5
"""Seconds a page waits for a loading run to release the warehouse before showing less."""


class DatasetName(Convertor[str]):
    """``{name:dataset}``: a valid dataset name, but never ``new``, so ``/datasets/new/...``
    always reaches Add DataSet whatever order the routers were included in."""

    regex = r"(?!new(?:/|$))[a-z][a-z0-9_]{0,62}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("dataset", DatasetName())


def page_warehouse(settings: Settings) -> WarehouseReader:
    """The warehouse with a short wait: pages show what they have rather than hang."""
    return open_warehouse(settings, min(settings.lock_timeout, PAGE_LOCK_TIMEOUT))


def is_active(request: Request, name: str, status: str) -> bool:
    """Whether dataset *name* is running, or queued on this service's scheduler."""
    if status == "running":
        return True
    return bool(request.app.state.scheduler.queued(name))


def redirect_with_flash(url: str, message: str) -> RedirectResponse:
    """A 303 to *url* that shows *message* once on the page it lands on."""
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLASH_COOKIE, quote(message), max_age=60, httponly=True, samesite="lax", path="/"
    )
    return response


def render_page(request: Request, name: str, context: dict[str, Any]) -> Response:
    """Render a full page, with the flash message a redirect left for it (then forget it)."""
    message = request.cookies.get(FLASH_COOKIE)
    response: Response = render(
        request, name, context | {"message": unquote(message) if message else None}
    )
    if message:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response
