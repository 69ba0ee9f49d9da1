"""The PostgreSQL server of the tests that need one (``scripts/test-services`` starts it and sets
LEADFERRY_TEST_POSTGRES_URL): a fresh database per test, dropped after it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def server_url() -> str:
    """The server's libpq URL (``postgresql://``), or the test fails saying how to get one."""
    url = os.environ.get("LEADFERRY_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "LEADFERRY_TEST_POSTGRES_URL is not set: run these tests with make test, or through "
            "scripts/test-services (it starts a PostgreSQL server)"
        )
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of an empty database of its own, dropped (with its connections) afterwards."""
    import psycopg

    admin = server_url()
    name = f"lf_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"create database {name}")
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"drop database {name} with (force)")
