"""Encryption of account secrets at rest (Fernet), and masks to show them.

The key comes from ``LEADFERRY_SECRET_KEY`` when set, else from the key file under
``$LEADFERRY_HOME``, created on first use and readable by its owner only; never created anew
while accounts hold secrets (they would become unreadable). An account's secret fields are
stored as one Fernet token of their JSON: nothing secret is ever written in clear.

A new key (``leadferry secrets rekey``) is first written beside the key file (``secret.key.new``),
the store then re-encrypted in one transaction, and the file renamed over the key file last. A
process that stopped in between leaves ``secret.key.new``: the next one keeps whichever key
opens the store (:func:`settle_staged_key`).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from leadferry.errors import ConfigError
from leadferry.scrub import SECRETS
from leadferry.settings import Settings

if TYPE_CHECKING:
    # Imported where a key is used: commands that read no account's secrets (preview, export,
    # users, tokens) load no cryptography.
    from cryptography.fernet import Fernet

logger = logging.getLogger(__name__)

MASK = "••••"
ENV_VAR = "LEADFERRY_SECRET_KEY"
NEW_KEY_ENV_VAR = "LEADFERRY_NEW_SECRET_KEY"


def mask(value: str) -> str:
    """Show a secret as ``••••`` plus its last 4 characters (only ``••••`` when it is short)."""
    return MASK if len(value) <= 8 else MASK + value[-4:]


def generate_key() -> str:
    """A new random Fernet key, as the text to put in ``LEADFERRY_SECRET_KEY``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def ensure_home(home: Path) -> None:
    """Create leadferry's home folder, private to its owner, if it does not exist."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)


class SecretBox:
    """Encrypts and decrypts the secret fields of accounts with one Fernet key."""

    def __init__(self, fernet: Fernet, source: str) -> None:
        self._fernet = fernet
        self.source = source  # where the key came from, for messages; never the key itself

    def __repr__(self) -> str:
        return f"SecretBox(source={self.source!r})"

    @classmethod
    def from_settings(cls, settings: Settings, accounts_with_secrets: int = 0) -> SecretBox:
        """Load the key from the environment or the key file; create the file only while no
        account has secrets (*accounts_with_secrets* is 0).

        Raises:
            ConfigError: the key is not a valid Fernet key, or the key file is missing while
                accounts have secrets.
        """
        if settings.secret_key is not None:
            return cls.from_key(settings.secret_key.get_secret_value(), ENV_VAR)
        path = settings.key_file
        if accounts_with_secrets and not path.exists():
            raise ConfigError(
                f"the key file {path} is missing, yet {_accounts(accounts_with_secrets)} "
                f"secrets encrypted with it: restore it from your backup (or set {ENV_VAR} to "
                "the key); if the key is lost, `leadferry secrets rekey --forget-unreadable` "
                "starts a new one, then re-enter each account's secrets with "
                "`leadferry accounts rotate NAME`"
            )
        return cls.from_key(_read_or_create_key_file(path), f"the key file {path}")

    @classmethod
    def from_key(cls, key: str, source: str) -> SecretBox:
        """A box for *key*; *source* says where it came from, in messages.

        Raises:
            ConfigError: *key* is not a valid Fernet key.
        """
        return cls(_fernet(key, source), source)

    def encrypt(self, values: dict[str, str]) -> str:
        """One token holding all of ``values``."""
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode("ascii")

    def decrypt(self, token: str, account: str) -> dict[str, str]:
        """The values in ``token``.

        Raises:
            ConfigError: the token was made with another key.
        """
        from cryptography.fernet import InvalidToken

        try:
            data = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise ConfigError(
                f"the secrets of account {account!r} cannot be read with {self.source} "
                "(another key encrypted them): restore that key, or re-enter them with "
                f"`leadferry accounts rotate {account}`"
            ) from None
        values: dict[str, str] = json.loads(data)
        SECRETS.add(*values.values())
        return values


def _fernet(key: str, source: str) -> Fernet:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        # Never echo the key: the message names where it came from and how to make a good one.
        raise ConfigError(
            f"{source} does not hold a valid Fernet key (32 url-safe base64-encoded bytes); "
            'generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from None


def _read_or_create_key_file(path: Path) -> str:
    ensure_home(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    key = generate_key()
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
        file.flush()
        os.fsync(file.fileno())
    logger.info("created the secret key file %s", path)
    return key


def staged_key_file(path: Path) -> Path:
    """Where a new key waits while the store is re-encrypted under it."""
    return path.with_name(path.name + ".new")


def stage_key_file(path: Path, key: str) -> None:
    """Write *key* beside the key file, private and on disk, before the store uses it."""
    staged = staged_key_file(path)
    ensure_home(path.parent)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
        file.flush()
        os.fsync(file.fileno())


def commit_staged_key(path: Path) -> None:
    """Put the staged key in the key file's place, in one rename."""
    os.replace(staged_key_file(path), path)
    _sync_folder(path.parent)


def discard_staged_key(path: Path) -> None:
    staged_key_file(path).unlink(missing_ok=True)


def settle_staged_key(path: Path, sample_token: str | None) -> None:
    """Finish or undo a key change that stopped halfway: the staged key wins when it opens
    *sample_token* (an account's secrets, so the store was re-encrypted), else it goes."""
    staged = staged_key_file(path)
    if not staged.exists():
        return
    key = staged.read_text(encoding="ascii", errors="replace").strip()
    from cryptography.fernet import Fernet, InvalidToken

    try:
        opened = sample_token is not None and bool(
            Fernet(key.encode("ascii")).decrypt(sample_token.encode("ascii"))
        )
    except (ValueError, InvalidToken, UnicodeEncodeError):
        opened = False
    if opened:
        commit_staged_key(path)
        logger.warning("finished an interrupted key change: %s holds the new key", path)
    else:
        discard_staged_key(path)
        logger.warning("undid an interrupted key change: %s keeps the old key", path)


def _sync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _accounts(count: int) -> str:
    return "1 account has" if count == 1 else f"{count} accounts have"


def _read_key_file(path: Path) -> str:
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("the key file %s can be read by other users: chmod 600 it", path)
    # Another process may have created the file an instant ago and still be writing it.
    for _ in range(50):
        key = path.read_text(encoding="ascii", errors="replace").strip()
        if key:
            return key
        time.sleep(0.02)
    return key
