"""The REST API under ``/api/v1``: connectors and reports, accounts, datasets, runs, tokens.

Each module is one noun; the routes parse input into the shapes of :mod:`.models`, call the
service layer (the CLI's too) and return what it gave. Every route needs a user: reads the
viewer role, changes the editor role (accounts, datasets, runs), the user list the admin
role. Errors are ``{"detail": "..."}`` with the status :func:`leadferry.web.status_of` picks.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.security import HTTPBearer

from leadferry.web.api import accounts, data, datasets, reports, runs, tokens, users
from leadferry.web.api.models import problems

# Declares the bearer scheme in the OpenAPI document; deps.current_user does the checking
# (a page session works as well), so a missing header is not an error here.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: `leadferry tokens create NAME --user USER`, or POST /tokens.",
)

router = APIRouter(dependencies=[Depends(bearer)], responses=problems(401))
for module in (reports, accounts, datasets, runs, data, tokens, users):
    router.include_router(module.router)
