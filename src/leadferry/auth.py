"""Roles, password hashing and the secrets behind API tokens and web sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults). API tokens and session ids are
random secrets that the store keeps only as SHA-256 digests: they are long and random, so a fast
digest is enough, and a stolen database holds nothing that logs anyone in.
"""

from __future__ import annotations

import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from leadferry.errors import ConfigError

ROLES = ("viewer", "editor", "admin")
"""Each role may do what the roles before it may: viewer reads, editor changes accounts,
datasets and runs, admin also manages users."""
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "lf_"
"""API tokens read ``lf_<secret>``: recognisable in a leaked file or a secret scanner."""
TOKEN_ID_LENGTH = 8
"""How many characters after ``lf_`` identify a token in lists (too few to guess the rest)."""

_hasher = PasswordHasher()


def role_allows(role: str, needed: str) -> bool:
    """Whether a user of ``role`` may do what ``needed`` may (admin ⊃ editor ⊃ viewer).

    An unknown ``role`` (a row written by a newer leadferry, say) allows nothing.

    Raises:
        ValueError: ``needed`` is not a role (a bug in the caller).
    """
    if needed not in ROLES:
        raise ValueError(f"unknown role {needed!r}: use one of {', '.join(ROLES)}")
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def check_role(role: str) -> str:
    """``role``, if it is one of ``ROLES``.

    Raises:
        ConfigError: an unknown role (the message names the allowed ones).
    """
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> None:
    """Accept a new password, or say which rule it breaks (never echoing it).

    Raises:
        ConfigError: shorter than ``MIN_PASSWORD_LENGTH`` characters.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, salted, in PHC string format (``$argon2id$...``)."""
    return _hasher.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """Whether ``password`` matches ``hashed``; False for a mismatch or a malformed hash."""
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """Whether ``hashed`` was made with weaker parameters than today's (or is malformed)."""
    try:
        return _hasher.check_needs_rehash(hashed)
    except (InvalidHashError, ValueError):
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, to verify against when a user does not exist.

    Checking a password then costs the same time whether the name exists or not.
    """
    return hash_password(new_secret())


def new_secret() -> str:
    """A fresh random secret: 32 bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 hex digest of ``secret``: what the store keeps of tokens and session ids."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_token() -> str:
    """A fresh API token as users see it: ``lf_<secret>``."""
    return TOKEN_PREFIX + new_secret()


def token_prefix(token: str) -> str | None:
    """The non-secret prefix that identifies ``token`` in lists; None if it is no API token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) <= len(TOKEN_PREFIX) + TOKEN_ID_LENGTH:
        return None
    return token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + TOKEN_ID_LENGTH]
