"""A node whose broker is on another machine must name the state every node shares."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from leadferry.errors import ConfigError
from leadferry.settings import Settings
from leadferry.store import generate_key
from leadferry.worker import check_shared

REMOTE = SecretStr("redis://redis.internal:6379/0")
STORE = SecretStr("postgresql+psycopg://leadferry@db.internal/leadferry")
WAREHOUSE = SecretStr("postgresql://leadferry@db.internal/warehouse")


def test_a_node_on_its_own_machine_needs_no_shared_state(tmp_path):
    check_shared(Settings(home=tmp_path, broker_url=SecretStr("redis://127.0.0.1:6379/0")))


def test_a_node_of_several_machines_names_each_missing_part(tmp_path):
    with pytest.raises(ConfigError) as refused:
        check_shared(Settings(home=tmp_path, broker_url=REMOTE))
    message = str(refused.value)
    for part in ("LEADFERRY_STORE_URL", "LEADFERRY_SECRET_KEY", "LEADFERRY_WAREHOUSE_URL"):
        assert part in message
    key = SecretStr(generate_key())
    with pytest.raises(ConfigError, match=r"set LEADFERRY_WAREHOUSE_URL \(a PostgreSQL warehouse"):
        check_shared(Settings(home=tmp_path, broker_url=REMOTE, store_url=STORE, secret_key=key))
    check_shared(
        Settings(
            home=tmp_path,
            broker_url=REMOTE,
            store_url=STORE,
            secret_key=key,
            warehouse_url=WAREHOUSE,
        )
    )
