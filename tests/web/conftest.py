"""The web app in-process: a store with one user per role, clients logged in as each.

Vendor calls (Test connection, Load Preview, Run Now) go to the simulators in-process, through
the client the app is given (``vendors``); tests/e2e runs the same app under ``leadferry serve``
against simulators over loopback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from starlette.testclient import TestClient

from leadferry import auth
from leadferry.run import run_dataset
from leadferry.settings import Settings
from leadferry.store import Store, generate_key
from leadferry.web import create_app
from leadferry.web.deps import SESSION_COOKIE
from leadferry.web.login import SESSION_LIFETIME
from tests.conftest import (
    API_KEY,
    NOW,
    Vendors,
    building_home,
    copy_migrated_store,
    leadexec_app,
)

PASSWORD = "correct-horse-42"
ROLES = {"ada": "admin", "eddie": "editor", "vera": "viewer"}


class Browser(TestClient):
    """A TestClient logged in as one user, which knows its session's CSRF token."""

    csrf: str = ""

    def send_form(self, method: str, url: str, data: dict[str, Any] | None = None, **kw: Any):
        return self.request(method, url, data={"csrf_token": self.csrf, **(data or {})}, **kw)

    def htmx(self, method: str, url: str, **kw: Any):
        headers = {"HX-Request": "true", "X-CSRF-Token": self.csrf} | kw.pop("headers", {})
        return self.request(method, url, headers=headers, **kw)


QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""argon2 at its lowest cost: these tests are about who may do what, not about how hard a hash
is to crack (tests/store/test_users.py checks the real hashes)."""


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch):
    monkeypatch.setattr(auth, "_hasher", QUICK_HASHER)


@pytest.fixture(scope="session")
def migrated_home(migrated_home: Path, tmp_path_factory) -> Path:
    """The migrated store with one user per role (``ROLES``), once per test process: each web
    test's store (and each module's ``home_template``) starts as a copy of it, where adding
    the three users to every test's store cost more than most tests' own requests."""
    settings = Settings(home=tmp_path_factory.mktemp("web") / "home", secret_key=generate_key())
    copy_migrated_store(migrated_home, settings)
    with pytest.MonkeyPatch.context() as patch, Store.open(settings) as store:
        patch.setattr(auth, "_hasher", QUICK_HASHER)
        for name, role in ROLES.items():
            store.add_user(name, PASSWORD, role)
    return settings.home


@pytest.fixture
def users(store):
    """The users of the store, one per role (``migrated_home`` added them)."""
    return {name: store.get_user(name) for name in ROLES}


@pytest.fixture
def vendor_client(vendors) -> Iterator[TestClient]:
    """The client every vendor call of the app goes through: to the simulators in-process."""
    with contextlib.closing(vendors.client()) as client:
        yield client


def runner(store: Store, settings: Settings, client: TestClient):
    """``run(name, at=NOW)`` runs dataset *name* against the simulators, as Run Now would."""

    def run_now(name: str, at: dt.datetime = NOW):
        return run_dataset(store, settings, name, clock=lambda: at, client=client)

    return run_now


@pytest.fixture
def run(store, settings, vendor_client):
    return runner(store, settings, vendor_client)


@pytest.fixture(scope="session")
def routed_apps() -> list[FastAPI]:
    """The first app a test process built: its routes serve every later test's app.

    FastAPI builds an app's routes (dependencies, pydantic validators) at its first request,
    0.15 to 0.3 s of CPU, times the hundreds of web tests; the routes are the same in every
    app, only the state differs (settings, store, scheduler, clock, vendor client).
    """
    return []


@pytest.fixture
def app(settings, store, users, vendor_client, routed_apps):
    """The app of this test's store: create_app's own, served by routes built once a process."""
    application = create_app(settings, store, clock=lambda: NOW, vendor_client=vendor_client)
    if not routed_apps:
        routed_apps.append(application)
    served = routed_apps[0]
    served.state = application.state
    yield served
    application.state.scheduler.shutdown()


def log_in(app, store, name: str, password: str = PASSWORD) -> Browser:
    """Log in through the real form, as a browser would."""
    browser = Browser(app, base_url="http://testserver", follow_redirects=False)
    page = browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = browser.post(
        "/login", data={"username": name, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    browser.csrf = store.get_session(browser.cookies[SESSION_COOKIE]).csrf_token
    return browser


def signed_in(app, store, name: str) -> Browser:
    """A browser holding the session the login form would give user *name*, made by the store
    as the form makes it: the form's two requests cost each test more than most of its own
    (test_login.py logs in through the form, ``log_in``)."""
    plain, session = store.create_session(name, SESSION_LIFETIME)
    browser = Browser(app, base_url="http://testserver", follow_redirects=False)
    browser.cookies.set(SESSION_COOKIE, plain)
    browser.csrf = session.csrf_token
    return browser


@pytest.fixture
def admin(app, store) -> Iterator[Browser]:
    with signed_in(app, store, "ada") as browser:
        yield browser


@pytest.fixture
def editor(app, store) -> Iterator[Browser]:
    with signed_in(app, store, "eddie") as browser:
        yield browser


@pytest.fixture
def viewer(app, store) -> Iterator[Browser]:
    with signed_in(app, store, "vera") as browser:
        yield browser


@pytest.fixture
def anonymous(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def api_client(app, store, name: str) -> TestClient:
    """A REST API client authenticated with a fresh API token of user *name*."""
    _token, plain = store.create_token(name, "tests")
    return TestClient(
        app, base_url="http://testserver", headers={"Authorization": f"Bearer {plain}"}
    )


@pytest.fixture
def leadexec_url(vendors) -> str:
    """The LeadExec simulator in-process (6,000 leads over the 10 days before NOW)."""
    _, simulator = leadexec_app()
    return vendors.add("leadexec.test", simulator)


def create_acme(store: Store, leadexec_url: str):
    """A LeadExec account on the simulator."""
    return store.create_account(
        "acme", "leadexec", {"base_url": f"{leadexec_url}/"}, {"api_key": API_KEY}
    )


@pytest.fixture
def acme_account(store, leadexec_url):
    return create_acme(store, leadexec_url)


@contextlib.contextmanager
def building_acme_home(tmp_path_factory, migrated_home):
    """A home for a module's ``home_template`` (``tests.conftest.building_home``) with account
    acme on the LeadExec simulator; yields its settings, store and ``run`` (the fixture's)."""
    vendors = Vendors()
    url = vendors.add("leadexec.test", leadexec_app()[1])
    with (
        building_home(tmp_path_factory, migrated_home) as (settings, store),
        vendors.client() as client,
    ):
        create_acme(store, url)
        yield settings, store, runner(store, settings, client)
