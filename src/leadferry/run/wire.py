"""The wire under the vendor HTTP client: urllib3's connection pool behind httpx2's client.

httpx2's own transport reads a body through pure-Python HTTP/1.1 parsing, 64 KiB at a time:
fetching the 1,000 pages of a million-lead run cost 2.2 CPU-s that way against 1.1 with
urllib3, whose connections read bodies with the standard library's C code
(docs/benchmarks.md). Everything above the wire stays httpx2's: requests, redirects and their
hooks, decoding, timeouts' configuration, errors; so do proxies, which httpx2 mounts on its own
transports. The body is streamed, so an answer cut short is an error while reading, as before.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterator

import httpx2
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

_CHUNK = 1 << 20
"""Bytes a body is read in: a LeadExec page is about a megabyte."""

# urllib3 logs each request's URL (at DEBUG; at WARNING when headers do not parse), and vendors'
# URLs carry credentials (LeadExec's key is a query parameter): nothing it logs is shown.
logging.getLogger("urllib3").setLevel(logging.CRITICAL + 1)


class Urllib3Transport(httpx2.BaseTransport):
    """An httpx2 transport sending over a urllib3 pool of *connections* per host, verifying TLS
    with *tls*."""

    def __init__(self, tls: ssl.SSLContext, connections: int) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=8, maxsize=connections, block=True, ssl_context=tls
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout", {})
        headers = urllib3.HTTPHeaderDict()
        for name, value in request.headers.multi_items():
            headers.add(name, value)
        with _httpx2_errors(request):
            answer = self._pool.urlopen(
                request.method,
                str(request.url),
                body=request.read() or None,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=timeouts.get("connect"), read=timeouts.get("read")),
                pool_timeout=timeouts.get("pool"),
            )
        return httpx2.Response(
            answer.status,
            headers=list(answer.headers.iteritems()),
            stream=_Body(answer, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode("latin-1"),
            },
        )

    def close(self) -> None:
        self._pool.clear()


class _Body(httpx2.SyncByteStream):
    def __init__(self, answer: urllib3.BaseHTTPResponse, request: httpx2.Request) -> None:
        self._answer, self._request = answer, request

    def __iter__(self) -> Iterator[bytes]:
        with _httpx2_errors(self._request):
            yield from self._answer.stream(_CHUNK, decode_content=False)

    def close(self) -> None:
        # Read to its end, an answer has given its connection back to the pool already; one
        # left half read cannot be reused: it is closed, and its place in the pool given back.
        self._answer.close()
        self._answer.release_conn()


@contextlib.contextmanager
def _httpx2_errors(request: httpx2.Request) -> Iterator[None]:
    """urllib3's errors as the httpx2 errors the connectors map (timeouts, broken transport)."""
    try:
        yield
    except (HTTPError, OSError) as exc:
        raise _mapped(exc)(str(exc), request=request) from exc


def _mapped(exc: BaseException) -> type[httpx2.TransportError]:
    # Before the timeouts: urllib3's NewConnectionError (a refused connection, say) is a kind
    # of ConnectTimeoutError, for its own callers' sake.
    if isinstance(exc, NewConnectionError | SSLError):
        return httpx2.ConnectError
    if isinstance(exc, ConnectTimeoutError):
        return httpx2.ConnectTimeout
    if isinstance(exc, ReadTimeoutError):
        return httpx2.ReadTimeout
    if isinstance(exc, ProtocolError):
        return httpx2.RemoteProtocolError
    return httpx2.NetworkError
