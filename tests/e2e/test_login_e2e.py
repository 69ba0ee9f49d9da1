"""Who the login throttle counts, over a real `leadferry serve`: X-Forwarded-For is believed
only from the proxies named with --forwarded-allow-ips."""

from __future__ import annotations

import re

import httpx2
import pytest

from leadferry.web.throttle import FREE_ATTEMPTS
from tests.e2e.conftest import E2E_PASSWORD, serving

pytestmark = pytest.mark.e2e

ELSEWHERE = {"X-Forwarded-For": "10.9.9.9"}


def log_in(base: str, name: str, password: str, headers: dict[str, str]) -> int:
    with httpx2.Client(base_url=base, timeout=30, headers=headers) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        data = {"username": name, "password": password, "csrf_token": token.group(1)}
        return client.post("/login", data=data).status_code


def lock_out_this_address(base: str) -> None:
    """Wrong passwords for someone else, until this address (127.0.0.1) is locked."""
    codes = [log_in(base, "mallory", "guess", {}) for _ in range(FREE_ATTEMPTS + 1)]
    assert codes == [401] * FREE_ATTEMPTS + [429]


def test_a_locked_out_address_cannot_claim_another_by_default(leadferry):
    with serving(leadferry) as base:
        lock_out_this_address(base)
        assert log_in(base, "ada", E2E_PASSWORD, ELSEWHERE) == 429
        assert log_in(base, "ada", E2E_PASSWORD, {}) == 429


def test_a_named_proxy_is_believed(leadferry):
    with serving(leadferry, "--forwarded-allow-ips", "127.0.0.1") as base:
        lock_out_this_address(base)
        assert log_in(base, "ada", E2E_PASSWORD, ELSEWHERE) == 303
        assert log_in(base, "ada", E2E_PASSWORD, {}) == 429
