from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from leadferry.errors import ConfigError
from leadferry.settings import Settings
from leadferry.store import Store, generate_key, mask

SECRET = "s3cr3t-API-key-5F1A"
ROTATED = "r0tated-API-key-77ZZ"


def database_bytes(home: Path) -> bytes:
    """The database file and its WAL side files, as they lie on disk."""
    return b"".join(path.read_bytes() for path in sorted(home.glob("leadferry.sqlite*")))


@pytest.mark.parametrize(
    ("value", "masked"),
    [("", "••••"), ("abcd", "••••"), ("12345678", "••••"), ("123456789", "••••6789")],
)
def test_mask_shows_at_most_the_last_four_characters(value: str, masked: str) -> None:
    assert mask(value) == masked


def test_secrets_are_never_written_in_clear(settings: Settings, home: Path) -> None:
    with Store.open(settings) as store:
        store.create_account("acme", "leadexec", {"base_url": "http://clear.example/"}, {})
        store.update_account("acme", secrets={"api_key": SECRET})
        store.create_account("twin", "leadexec", {}, {"api_key": SECRET})
        store.update_account("twin", secrets={"api_key": ROTATED})
        raw = database_bytes(home)  # WAL still open: recent writes are in the -wal file
        assert b"clear.example" in raw  # the check can see clear text when there is some
        assert SECRET.encode() not in raw
        assert ROTATED.encode() not in raw
    raw = database_bytes(home)
    assert b"clear.example" in raw
    assert SECRET.encode() not in raw
    assert ROTATED.encode() not in raw


def test_the_key_file_is_created_private_on_first_use(settings: Settings, home: Path) -> None:
    with Store.open(settings) as store:
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert not settings.key_file.exists()  # no secret handled yet
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
    assert stat.S_IMODE(settings.key_file.stat().st_mode) == 0o600
    Fernet(settings.key_file.read_text().strip())  # a valid key
    with Store.open(settings) as store:
        assert store.get_account("acme").secrets["api_key"].get_secret_value() == SECRET


def test_an_existing_home_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with Store.open(Settings(home=tmp_path, secret_key=None)):
        pass
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_the_environment_key_is_used_instead_of_a_key_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key()
    monkeypatch.setenv("LEADFERRY_SECRET_KEY", key)
    monkeypatch.setenv("LEADFERRY_HOME", str(home))
    settings = Settings()
    with Store.open(settings) as store:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
    assert not settings.key_file.exists()
    with Store.open(Settings(home=home, secret_key=SecretStr(key))) as store:
        assert store.get_account("acme").secrets["api_key"].get_secret_value() == SECRET


@pytest.mark.parametrize("bad", ["not-a-key", "x" * 44, "", "ключ"])
def test_a_bad_environment_key_is_a_config_error(home: Path, bad: str) -> None:
    with Store.open(Settings(home=home, secret_key=SecretStr(bad))) as store:
        with pytest.raises(
            ConfigError, match="LEADFERRY_SECRET_KEY does not hold a valid"
        ) as caught:
            store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
        if bad:
            assert bad not in str(caught.value)
        assert store.list_accounts() == []


def test_a_bad_key_file_is_a_config_error_naming_it(settings: Settings, home: Path) -> None:
    home.mkdir(mode=0o700)
    settings.key_file.write_text("garbage-key\n")
    settings.key_file.chmod(0o600)
    with Store.open(settings) as store, pytest.raises(ConfigError) as caught:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
    assert str(settings.key_file) in str(caught.value)
    assert "garbage-key" not in str(caught.value)


def test_secrets_under_another_key_are_unreadable_but_the_rest_works(
    settings: Settings, home: Path
) -> None:
    with Store.open(settings) as store:
        store.create_account(
            "acme", "leadexec", {"base_url": "http://x.test/"}, {"api_key": SECRET}
        )
    other = Settings(home=home, secret_key=SecretStr(generate_key()))
    with Store.open(other) as store:
        account = store.get_account("acme")
        assert account.config == {"base_url": "http://x.test/"}
        assert account.secrets == {}
        with pytest.raises(ConfigError) as caught:
            account.credentials()
        assert str(caught.value) == (
            "the secrets of account 'acme' cannot be read with LEADFERRY_SECRET_KEY (another "
            "key encrypted them): restore that key, or re-enter them with "
            "`leadferry accounts rotate acme`"
        )
        (summary,) = store.list_accounts()
        assert (summary.readable, summary.masked) == (False, {})
        store.update_account("acme", secrets={"api_key": ROTATED})  # rotating re-enters them
        assert store.get_account("acme").credentials()["api_key"] == ROTATED
        assert store.list_accounts()[0].readable


def test_a_missing_key_file_is_never_replaced_while_accounts_have_secrets(
    settings: Settings, home: Path
) -> None:
    file_settings = Settings(home=home, secret_key=None)
    with Store.open(file_settings) as store:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
    saved = file_settings.key_file.read_text()
    file_settings.key_file.unlink()
    with Store.open(file_settings) as store:
        account = store.get_account("acme")
        assert "is missing, yet 1 account has secrets encrypted with it" in account.unreadable
        assert "restore it from your backup" in account.unreadable
        assert not store.list_accounts()[0].readable
        with pytest.raises(ConfigError, match="is missing"):
            store.create_account("other", "leadexec", {}, {"api_key": ROTATED})
        assert not file_settings.key_file.exists()
    file_settings.key_file.write_text(saved)
    with Store.open(file_settings) as store:
        assert store.get_account("acme").credentials()["api_key"] == SECRET


def test_rekey_moves_every_secret_to_a_new_key_file(home: Path) -> None:
    file_settings = Settings(home=home, secret_key=None)
    with Store.open(file_settings) as store:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
        store.create_account("beta", "leadexec", {}, {"api_key": ROTATED})
        old = file_settings.key_file.read_text()
        done = store.rekey()
        assert done.accounts == ["acme", "beta"]
        assert done.forgotten == []
        assert store.get_account("beta").credentials()["api_key"] == ROTATED
    new = file_settings.key_file.read_text()
    assert new != old
    assert stat.S_IMODE(file_settings.key_file.stat().st_mode) == 0o600
    assert not (home / "secret.key.new").exists()
    with Store.open(file_settings) as store:
        assert store.get_account("acme").credentials()["api_key"] == SECRET
    with Store.open(Settings(home=home, secret_key=SecretStr(old.strip()))) as store:
        assert store.get_account("acme").unreadable is not None


def test_rekey_refuses_unreadable_secrets_unless_told_to_forget_them(home: Path) -> None:
    file_settings = Settings(home=home, secret_key=None)
    with Store.open(file_settings) as store:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
    file_settings.key_file.unlink()  # the key is lost
    with Store.open(file_settings) as store:
        with pytest.raises(ConfigError, match="cannot read the secrets of acme"):
            store.rekey()
        assert not file_settings.key_file.exists()
        done = store.rekey(forget_unreadable=True)
        assert (done.accounts, done.forgotten) == ([], ["acme"])
        assert store.get_account("acme").unreadable is not None
        store.create_account("beta", "leadexec", {}, {"api_key": ROTATED})
        store.update_account("acme", secrets={"api_key": SECRET})
    with Store.open(file_settings) as store:
        assert store.get_account("acme").credentials()["api_key"] == SECRET
        assert store.get_account("beta").credentials()["api_key"] == ROTATED


def test_rekey_with_the_environment_key_takes_the_new_one_from_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = generate_key(), generate_key()
    with Store.open(Settings(home=home, secret_key=SecretStr(old))) as store:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
        monkeypatch.delenv("LEADFERRY_NEW_SECRET_KEY", raising=False)
        with pytest.raises(ConfigError, match="put the new key in LEADFERRY_NEW_SECRET_KEY"):
            store.rekey()
        monkeypatch.setenv("LEADFERRY_NEW_SECRET_KEY", new)
        store.rekey()
    assert not (home / "secret.key").exists()
    with Store.open(Settings(home=home, secret_key=SecretStr(new))) as store:
        assert store.get_account("acme").credentials()["api_key"] == SECRET


@pytest.mark.parametrize("store_committed", [True, False])
def test_a_key_change_that_stopped_halfway_is_settled_by_the_next_open(
    home: Path, store_committed: bool
) -> None:
    """secret.key.new is written before the store commits and renamed after: whichever key
    opens the store's secrets is kept."""
    file_settings = Settings(home=home, secret_key=None)
    with Store.open(file_settings) as store:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
    old = file_settings.key_file.read_text().strip()
    new = generate_key()
    if store_committed:
        with Store.open(Settings(home=home, secret_key=SecretStr(old))) as store:
            store.update_account("acme", secrets={"api_key": SECRET})  # still under old
        with Store.open(Settings(home=home, secret_key=SecretStr(new))) as store:
            store.update_account("acme", secrets={"api_key": SECRET})  # now under new
    (home / "secret.key.new").write_text(new + "\n")
    with Store.open(file_settings) as store:
        assert store.get_account("acme").credentials()["api_key"] == SECRET
    assert not (home / "secret.key.new").exists()
    assert file_settings.key_file.read_text().strip() == (new if store_committed else old)
