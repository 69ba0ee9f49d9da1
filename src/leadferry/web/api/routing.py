"""The route class of every API route: how refused input is answered.

FastAPI's 422 echoes each refused value back. Here it does not: the value may be a secret (an
account's API key that was too long), and it may hold text that JSON allows but UTF-8 cannot
encode (a lone surrogate such as ``"\\ud800"``), which would turn the answer into a 500. The
field, the reason and its limits are kept; any such text left (a mapping key in ``loc``) is
escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


class ApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_quietly(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                errors = [encodable(without_input(error)) for error in exc.errors()]
                raise RequestValidationError(errors) from None

        return handle_quietly


def without_input(error: Any) -> Any:
    """A validation error without the value it refused."""
    if isinstance(error, dict):
        return {key: value for key, value in error.items() if key != "input"}
    return error


def encodable(value: Any) -> Any:
    """*value* with every string's unencodable characters escaped (``\\ud800``)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(item) for item in value]
    return value
