from __future__ import annotations

import pytest

from leadferry.errors import ConfigError, ConflictError, NotFoundError
from leadferry.store import DatasetSpec, Store

from ._support import T0, Clock


def test_an_account_is_created_and_read_back(store: Store) -> None:
    created = store.create_account(
        "acme", "leadexec", {"base_url": "http://x/"}, {"api_key": "k3y-0123456789"}
    )
    account = store.get_account("acme")
    assert account == created
    assert (account.name, account.connector, account.config) == (
        "acme",
        "leadexec",
        {"base_url": "http://x/"},
    )
    assert account.secrets["api_key"].get_secret_value() == "k3y-0123456789"
    assert account.credentials() == {"base_url": "http://x/", "api_key": "k3y-0123456789"}
    assert account.created_at == account.updated_at == T0


def test_account_reprs_never_show_secrets(store: Store) -> None:
    account = store.create_account("acme", "leadexec", {}, {"api_key": "k3y-0123456789"})
    assert "k3y-0123456789" not in repr(account)
    assert "k3y-0123456789" not in repr(store.list_accounts())


def test_accounts_are_listed_with_masks_and_dataset_counts(store: Store) -> None:
    store.create_account("zeta", "avidtrak", {"base_url": "http://z/"}, {"pin_code": "1234"})
    store.create_account("acme", "leadexec", {}, {"api_key": "ABCDEFGH5F1A"})
    store.create_dataset(DatasetSpec("one", "acme", "leads", {"lid": 1}))
    store.create_dataset(DatasetSpec("two", "acme", "leads", {"lid": 2}))
    summaries = store.list_accounts()
    assert [(s.name, s.connector, s.dataset_count) for s in summaries] == [
        ("acme", "leadexec", 2),
        ("zeta", "avidtrak", 0),
    ]
    assert summaries[0].masked == {"api_key": "••••5F1A"}
    assert summaries[1].masked == {"pin_code": "••••"}
    assert summaries[1].config == {"base_url": "http://z/"}


def test_an_account_name_can_be_used_once(store: Store) -> None:
    store.create_account("acme", "leadexec", {}, {})
    with pytest.raises(ConflictError, match="'acme' already exists"):
        store.create_account("acme", "salesexec", {}, {})


@pytest.mark.parametrize("name", ["", "-acme", "ac me", "acme/x", "a" * 65, "é"])
def test_invalid_account_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(ConfigError, match="invalid account name"):
        store.create_account(name, "leadexec", {}, {})


@pytest.mark.parametrize("name", ["a", "Acme", "acme-2.prod_eu", "9" * 64])
def test_valid_account_names_are_accepted(store: Store, name: str) -> None:
    assert store.create_account(name, "leadexec", {}, {}).name == name


def test_a_missing_account_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no account named 'nope'"):
        store.get_account("nope")


def test_renaming_an_account_keeps_its_datasets(store: Store, dataset: str) -> None:
    renamed = store.rename_account("acme", "acme-prod")
    assert renamed.name == "acme-prod"
    assert store.get_dataset(dataset).account == "acme-prod"
    assert renamed.secrets["api_key"].get_secret_value() == "k3y-0123456789"
    with pytest.raises(NotFoundError):
        store.get_account("acme")


def test_renaming_to_a_taken_name_is_refused(store: Store) -> None:
    store.create_account("acme", "leadexec", {}, {})
    store.create_account("other", "leadexec", {}, {})
    with pytest.raises(ConflictError, match="'other' already exists"):
        store.rename_account("acme", "other")


def test_updating_an_account_merges_config_and_rotates_secrets(store: Store, clock: Clock) -> None:
    store.create_account(
        "se", "salesexec", {"username": "bob", "timezone": "UTC"}, {"password": "old-passw0rd"}
    )
    later = clock.advance(hours=1)
    account = store.update_account(
        "se", config={"timezone": "America/Chicago"}, secrets={"password": "new-passw0rd"}
    )
    assert account.config == {"username": "bob", "timezone": "America/Chicago"}
    assert account.secrets["password"].get_secret_value() == "new-passw0rd"
    assert (account.created_at, account.updated_at) == (T0, later)
    assert store.get_account("se") == account


def test_rotating_one_secret_keeps_the_others(store: Store) -> None:
    store.create_account("x", "acme", {}, {"token": "t0ken-aaaaaaaa", "pin": "1111"})
    account = store.update_account("x", secrets={"pin": "2222"})
    assert {k: v.get_secret_value() for k, v in account.secrets.items()} == {
        "token": "t0ken-aaaaaaaa",
        "pin": "2222",
    }


def test_an_unused_account_is_removed(store: Store) -> None:
    store.create_account("acme", "leadexec", {}, {})
    store.remove_account("acme")
    assert store.list_accounts() == []
    with pytest.raises(NotFoundError):
        store.remove_account("acme")


def test_an_account_in_use_is_not_removed(store: Store, dataset: str) -> None:
    store.create_dataset(DatasetSpec("acme_calls", "acme", "leads", {"lid": 2}))
    with pytest.raises(ConflictError, match=r"used by 2 datasets \(acme_calls, acme_leads\)"):
        store.remove_account("acme")
    assert store.get_account("acme").name == "acme"


def test_an_account_is_removed_once_its_datasets_moved(store: Store, dataset: str) -> None:
    store.create_account("acme2", "leadexec", {}, {"api_key": "k3y-9999999999"})
    store.update_dataset(dataset, account="acme2")
    store.remove_account("acme")
    assert [s.name for s in store.list_accounts()] == ["acme2"]
    assert store.get_dataset(dataset).account == "acme2"
