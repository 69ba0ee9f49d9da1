"""The Redis server ``make test`` starts (scripts/test-services) answers on loopback.

Redis is the queue of the coming Celery workers; this test keeps the server's start honest
until their tests use it.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.services


def test_the_test_redis_answers_a_ping():
    url = os.environ.get("LEADFERRY_TEST_REDIS_URL")
    if not url:
        pytest.fail("LEADFERRY_TEST_REDIS_URL is not set: run the tests with make test")
    address = urlsplit(url)
    assert address.hostname == "127.0.0.1"
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert connection.recv(16) == b"+PONG\r\n"
