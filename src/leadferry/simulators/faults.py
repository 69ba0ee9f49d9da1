"""How the simulators misbehave like real services, written once for all of them.

A simulator's ``Settings`` declares the faults it plays with the field types below, so that every
``leadferry simulate NAME`` names and explains them alike, and its app meets them through one
:class:`Faults`: a rate limit answered with 429 and ``Retry-After``, latency, 500 or 503 (with
``Retry-After: 1``), and the draws of its own faults (a body cut short, a token revoked), all from
one seeded random stream, so that the same seed plays the same faults. Each simulator words the
answers the way its vendor does; ``GET /__health`` (:func:`simulator_app`) is never faulted.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from typing import Annotated, Protocol

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from pydantic import Field

Seed = Annotated[
    int, Field(description="Seed of every generated value and fault; same seed, same answers.")
]
LatencyMs = Annotated[float, Field(ge=0, description="Milliseconds added to every answer.")]
RateLimit = Annotated[
    float,
    Field(ge=0, description="Requests per second allowed, 0 for no limit; above it, 429."),
]
FailRate = Annotated[
    float,
    Field(ge=0, le=1, description="Probability that a request fails with 500 or 503."),
]


class FaultSettings(Protocol):
    """The settings every simulator has; read on each request, so a test may change them."""

    latency_ms: float
    fail_rate: float


Answer = Callable[[int, dict[str, str]], Response]
"""How a simulator answers a fault: status (429, 500 or 503) and headers -> its vendor's body."""


class RateLimiter:
    """A token bucket refilled at ``rate`` per second, holding at most ``max(1, rate)`` tokens."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def wait(self) -> float:
        """Take a token and return 0, or return the seconds until there is one."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Faults:
    """The faults of one simulator app, drawn from ``random.Random(seed)``.

    Args:
        settings: the app's settings (latency and failure rate, read on every request).
        seed: the random stream's seed.
        rate_limit: requests per second allowed, 0 for no limit.
    """

    def __init__(self, settings: FaultSettings, seed: int | str, rate_limit: float = 0) -> None:
        self.settings = settings
        self.chaos = random.Random(seed)
        self.limiter = RateLimiter(rate_limit)

    async def meet(self, answer: Answer) -> Response | None:
        """The fault this request meets, as *answer* words it, after the latency; None: none.

        Over the rate limit: 429 with ``Retry-After`` in whole seconds (and no latency); then,
        with ``fail_rate``, 500, or 503 with ``Retry-After: 1``, one as likely as the other.
        """
        if wait := self.limiter.wait():
            return answer(429, {"Retry-After": str(max(1, math.ceil(wait)))})
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000)
        if self.happens(self.settings.fail_rate):
            if self.chaos.random() < 0.5:
                return answer(500, {})
            return answer(503, {"Retry-After": "1"})
        return None

    def happens(self, rate: float) -> bool:
        """Whether a fault of probability *rate* happens now; a rate of 0 draws nothing, so a
        fault switched off leaves the others' draws as they were."""
        return bool(rate) and self.chaos.random() < rate


def simulator_app(title: str) -> FastAPI:
    """A simulator's app: no docs pages, and ``GET /__health`` answering ``ok``, never faulted
    (registered first, so no catch-all route of the simulator takes it)."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/__health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return app
