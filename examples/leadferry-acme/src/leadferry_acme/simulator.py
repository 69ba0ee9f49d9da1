"""Simulator of the Acme CRM API (see :mod:`leadferry_acme.connector`): ``leadferry simulate acme``.

The account holds ``contacts`` contacts created over the ``days`` days before now, generated
from ``seed``: the same settings give the same contacts.
"""

from __future__ import annotations

import datetime as dt
import random

from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from leadferry.simulators import SimulatedAccount

STAGES = ("new", "contacted", "qualified", "won", "lost")
MAX_PER_PAGE = 500


class Settings(BaseModel):
    """The simulated account."""

    seed: int = Field(default=1, description="Seed of every generated value.")
    contacts: int = Field(default=2000, ge=0, description="Contacts created over the period.")
    days: int = Field(default=30, ge=1, description="Contacts are spread over the last DAYS days.")
    token: list[str] = Field(
        default_factory=lambda: ["acme-token"], description="An accepted API token (repeatable)."
    )


def generate(settings: Settings, now: dt.datetime) -> list[dict[str, object]]:
    """Every contact of the account, oldest first."""
    rng = random.Random(settings.seed)
    span = settings.days * 86_400
    ages = (dt.timedelta(seconds=rng.uniform(0, span)) for _ in range(settings.contacts))
    created = sorted(now - age for age in ages)
    return [
        {
            "id": 1000 + number,
            "created_at": at.replace(microsecond=0).isoformat(),
            "name": f"Contact {number}",
            "email": f"contact{number}@example.com",
            "stage": rng.choice(STAGES),
        }
        for number, at in enumerate(created)
    ]


def create_app(settings: Settings, now: dt.datetime | None = None) -> FastAPI:
    """The API, its contacts created up to *now* (the current time when None)."""
    contacts = generate(settings, now or dt.datetime.now(dt.UTC))
    app = FastAPI(title="Acme CRM simulator")

    def authorize(authorization: str | None) -> None:
        if authorization not in {f"Bearer {token}" for token in settings.token}:
            raise HTTPException(401, "invalid token")

    @app.get("/__health", response_class=PlainTextResponse)
    def health() -> str:
        return "ok"

    @app.get("/v1/me")
    def me(authorization: str | None = Header(None)) -> dict[str, str]:
        authorize(authorization)
        return {"account": "acme"}

    @app.get("/v1/contacts")
    def list_contacts(
        since: dt.datetime,
        until: dt.datetime,
        page: int = Query(1, ge=1),
        per_page: int = Query(100, ge=1, le=MAX_PER_PAGE),
        authorization: str | None = Header(None),
    ) -> dict[str, object]:
        authorize(authorization)
        found = [
            c for c in contacts if since <= dt.datetime.fromisoformat(str(c["created_at"])) < until
        ]
        first = (page - 1) * per_page
        return {
            "total": len(found),
            "contacts": found[first : first + per_page],
        }

    return app


def account(settings: Settings, url: str) -> SimulatedAccount:
    """The account that reads this simulator at *url* with its first token."""
    return SimulatedAccount({"base_url": url, "api_token": settings.token[0]})
