"""Encryption of account secrets at rest (Fernet), and masks to show them.

The key comes from ``LEADFERRY_SECRET_KEY`` when set, else from the key file under
``$LEADFERRY_HOME``, created on first use and readable by its owner only. An account's secret
fields are stored as one Fernet token of their JSON: nothing secret is ever written in clear.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from leadferry.errors import ConfigError
from leadferry.settings import Settings

logger = logging.getLogger(__name__)

MASK = "••••"
ENV_VAR = "LEADFERRY_SECRET_KEY"


def mask(value: str) -> str:
    """Show a secret as ``••••`` plus its last 4 characters (only ``••••`` when it is short)."""
    return MASK if len(value) <= 8 else MASK + value[-4:]


def generate_key() -> str:
    """A new random Fernet key, as the text to put in ``LEADFERRY_SECRET_KEY``."""
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
    def from_settings(cls, settings: Settings) -> SecretBox:
        """Load the key from the environment or the key file, creating the file if needed.

        Raises:
            ConfigError: the key is not a valid Fernet key.
        """
        if settings.secret_key is not None:
            return cls(_fernet(settings.secret_key.get_secret_value(), ENV_VAR), ENV_VAR)
        path = settings.key_file
        source = f"the key file {path}"
        return cls(_fernet(_read_or_create_key_file(path), source), source)

    def encrypt(self, values: dict[str, str]) -> str:
        """One token holding all of ``values``."""
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode("ascii")

    def decrypt(self, token: str, account: str) -> dict[str, str]:
        """The values in ``token``.

        Raises:
            ConfigError: the token was made with another key.
        """
        try:
            data = self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken:
            raise ConfigError(
                f"cannot decrypt the secrets of account {account!r}: "
                f"was {ENV_VAR} or the key file changed?"
            ) from None
        values: dict[str, str] = json.loads(data)
        return values


def _fernet(key: str, source: str) -> Fernet:
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
