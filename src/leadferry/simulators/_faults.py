"""What the simulators share to misbehave like real services: a rate limit."""

from __future__ import annotations

import time


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
