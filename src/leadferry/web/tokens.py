"""The API tokens page: everyone's own tokens (an admin sees and revokes everyone's).

A token is shown once, when it is made. HTMX posts get back the page's panel (``_tokens.html``)
with a message, or with the error next to its field; without JavaScript the same forms get the
whole page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response

from leadferry.auth import role_allows
from leadferry.errors import ConfigError
from leadferry.web.api.tokens import MAX_TOKEN_ID
from leadferry.web.deps import StoreDep, ViewerDep
from leadferry.web.templating import render_panel

if TYPE_CHECKING:
    from leadferry.store import Store
    from leadferry.store.records import ApiToken
    from leadferry.store.users import User

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=200)]


def _tokens(
    request: Request,
    store: Store,
    user: User,
    *,
    created: tuple[ApiToken, str] | None = None,
    message: str | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    everyone = role_allows(user.role, "admin")
    context = {
        "tokens": store.list_tokens(None if everyone else user.name),
        "everyone": everyone,
        "created": created,
        "message": message,
        "errors": errors or {},
    }
    response = render_panel(request, "tokens.html", "_tokens.html", context, status_code)
    if created is not None:  # the only answer that holds a token: keep it out of caches
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/tokens")
def tokens_page(request: Request, store: StoreDep, user: ViewerDep) -> Response:
    return _tokens(request, store, user)


@router.post("/tokens")
def create_token(
    request: Request, store: StoreDep, user: ViewerDep, token_name: Text = ""
) -> Response:
    """Make an API token for the current user and show it, this once."""
    try:
        created = store.create_token(user.name, token_name)
    except ConfigError as exc:
        return _tokens(request, store, user, errors={"token-name": str(exc)}, status_code=422)
    return _tokens(request, store, user, created=created)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    request: Request,
    token_id: Annotated[int, Path(ge=1, le=MAX_TOKEN_ID)],
    store: StoreDep,
    user: ViewerDep,
) -> Response:
    """Revoke one of the user's tokens (an admin may revoke anyone's)."""
    owner = None if role_allows(user.role, "admin") else user.name
    token = store.revoke_token(token_id, owner)
    return _tokens(request, store, user, message=f"Revoked token {token.name} ({token.user}).")
