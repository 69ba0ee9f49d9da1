"""The HTTP client runs and vendor calls use, and an account's connector opened on it."""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import Iterator

import httpx2

from leadferry.connectors import get_connector
from leadferry.connectors.base import (
    Connector,
    Credentials,
    RetryPolicy,
    refuse_cross_host_redirect,
)
from leadferry.run.wire import Urllib3Transport
from leadferry.settings import Settings
from leadferry.store import Account


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings every run's client shares: reading the system's CA certificates takes
    about 50 ms of CPU, a tenth of a small run, and they do not change while a process runs."""
    return httpx2.create_ssl_context()


def new_client(settings: Settings) -> httpx2.Client:
    """The HTTP client runs use: bounded timeouts, enough connections for the page threads,
    redirects followed only on the same host."""
    connections = settings.concurrency + 2
    return httpx2.Client(
        verify=tls_context(),
        timeout=httpx2.Timeout(settings.http_timeout, connect=min(10.0, settings.http_timeout)),
        limits=httpx2.Limits(max_connections=connections),
        transport=Urllib3Transport(tls_context(), connections),
        follow_redirects=True,
        event_hooks={"response": [refuse_cross_host_redirect]},
        headers={"User-Agent": "leadferry"},
    )


def _open(account: Account, client: httpx2.Client, settings: Settings) -> Connector:
    """*account*'s connector, calling through *client* with the settings' concurrency and
    retries."""
    connector = get_connector(account.connector)
    retry = RetryPolicy(
        attempts=settings.http_retries + 1,
        base_delay=settings.http_backoff,
        max_total_wait=settings.http_max_wait,
    )
    return connector(
        client,
        Credentials(account.name, account.credentials()),
        concurrency=settings.concurrency,
        retry=retry,
    )


@contextlib.contextmanager
def connected(
    account: Account, settings: Settings, client: httpx2.Client | None = None
) -> Iterator[Connector]:
    """*account*'s connector for the block, calling through *client* when given, else through
    a client of its own, closed after the block."""
    with contextlib.nullcontext(client) if client else new_client(settings) as http:
        yield _open(account, http, settings)
