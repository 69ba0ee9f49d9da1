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


def test_secrets_under_another_key_cannot_be_read(settings: Settings, home: Path) -> None:
    with Store.open(settings) as store:
        store.create_account("acme", "leadexec", {}, {"api_key": SECRET})
    other = Settings(home=home, secret_key=SecretStr(generate_key()))
    message = (
        "cannot decrypt the secrets of account 'acme': "
        "was LEADFERRY_SECRET_KEY or the key file changed?"
    )
    with Store.open(other) as store:
        with pytest.raises(ConfigError) as caught:
            store.get_account("acme")
        assert str(caught.value) == message
        with pytest.raises(ConfigError, match="cannot decrypt"):
            store.list_accounts()
        with pytest.raises(ConfigError, match="cannot decrypt"):
            store.update_account("acme", secrets={"api_key": ROTATED})
