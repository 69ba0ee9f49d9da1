from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store
from tests.conftest import copy_migrated_store

from ._support import Clock


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    # Explicit values win over any LEADFERRY_* variable of the developer's shell.
    return Settings(home=home, secret_key=None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(settings: Settings, clock: Clock, migrated_home: Path) -> Iterator[Store]:
    copy_migrated_store(migrated_home, settings)
    with Store.open(settings, clock=clock) as opened:
        yield opened


@pytest.fixture
def dataset(store: Store) -> str:
    """The name of a dataset, acme_leads, of the leadexec account acme."""
    store.create_account(
        "acme", "leadexec", {"base_url": "http://x/"}, {"api_key": "k3y-0123456789"}
    )
    store.create_dataset(DatasetSpec("acme_leads", "acme", "leads", {"lid": 271}))
    return "acme_leads"
