"""The login throttle under concurrency: wrong passwords arriving all at once, from real
threads, at the app served over loopback."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from leadferry.web.throttle import FREE_ATTEMPTS
from tests.conftest import serve_on_loopback
from tests.web.conftest import PASSWORD

AT_ONCE = 40


@pytest.fixture
def quick_password_hashing(store):
    """The real argon2 cost here: a slow check is what lets attempts overlap. The store's users
    were added with the lowest cost (``migrated_home``), and a hash keeps the cost it was made
    with: ada's password is hashed again at the real one."""
    store.set_password("ada", PASSWORD)


def login_form(base: str) -> tuple[httpx2.Client, str]:
    # Plain HTTP on loopback: no certificate to check, so no CA bundle to load (a tenth of a
    # second of CPU for each of the forty clients).
    client = httpx2.Client(base_url=base, timeout=60, follow_redirects=False, verify=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    return client, token


def test_no_more_passwords_are_checked_than_the_limit_however_many_arrive_at_once(app, users):
    with serve_on_loopback(app) as base:
        forms = [login_form(base) for _ in range(AT_ONCE)]
        start = threading.Barrier(AT_ONCE)

        def guess(form: tuple[httpx2.Client, str]) -> int:
            client, token = form
            start.wait()
            data = {"username": "ada", "password": "wrong-guess", "csrf_token": token}
            return client.post("/login", data=data).status_code

        with ThreadPoolExecutor(AT_ONCE) as pool:
            codes = list(pool.map(guess, forms))
        client, token = forms[0]
        right = client.post(
            "/login", data={"username": "ada", "password": PASSWORD, "csrf_token": token}
        )
        for form_client, _ in forms:
            form_client.close()
    assert codes.count(401) <= FREE_ATTEMPTS  # each 401 is a password checked
    assert codes.count(401) + codes.count(429) == AT_ONCE
    assert right.status_code == 429  # the name is locked now, even for the right password
