"""``/tokens``: the current user's API tokens. A token is shown once, when it is created."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from leadferry.store import ApiToken
from leadferry.web.api.models import TokenCreate, TokenCreated, TokenPublic, TokensPublic, problems
from leadferry.web.api.routing import ApiRoute
from leadferry.web.deps import StoreDep, ViewerDep

router = APIRouter(prefix="/tokens", tags=["tokens"], route_class=ApiRoute)

MAX_TOKEN_ID = 2**62  # SQLite integers stop at 2**63 - 1


def token_public(token: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
    )


@router.get("")
def list_tokens(store: StoreDep, user: ViewerDep) -> TokensPublic:
    """The current user's tokens (never the tokens themselves), oldest first."""
    found = [token_public(t) for t in store.list_tokens(user.name)]
    return TokensPublic(data=found, count=len(found))


@router.post("", status_code=201, responses=problems(422))
def create_token(body: TokenCreate, store: StoreDep, user: ViewerDep) -> TokenCreated:
    """A new token for the current user, with its role. Copy ``token`` now: only its digest
    is kept, so it is never shown again."""
    token, plaintext = store.create_token(user.name, body.name)
    return TokenCreated(**token_public(token).model_dump(), token=plaintext)


@router.delete("/{token_id}", status_code=204, responses=problems(404))
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_TOKEN_ID)], store: StoreDep, user: ViewerDep
) -> None:
    """Revoke one of the current user's tokens (another user's is a 404, as if absent)."""
    store.revoke_token(token_id, user.name)
