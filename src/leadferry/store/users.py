"""Users, their API tokens and their web sessions: who may use the web UI and the REST API.

The store keeps argon2 hashes of passwords and SHA-256 digests of API tokens and session ids,
never the secrets themselves: each secret is returned once, when it is made. A web session reads
its user (and so the user's current role) on every lookup, so a role change applies at once, and
a password change or the user's removal ends their sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from leadferry.auth import (
    check_password,
    check_role,
    digest,
    dummy_hash,
    hash_password,
    needs_rehash,
    new_api_token,
    new_secret,
    token_prefix,
    verify_password,
)
from leadferry.errors import ConfigError, ConflictError, NotFoundError
from leadferry.store.orm import ApiTokenRow, UserRow, WebSessionRow
from leadferry.store.queries import find_named, named_row
from leadferry.store.records import ApiToken, User, WebSession, check_user_name

if TYPE_CHECKING:
    from sqlalchemy import Row

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` of a token is rewritten at most this often, so that a client calling the API
in a loop does not take the store's write lock on every request."""
TOKEN_NAME_LENGTH = 64

_OWNER = (UserRow.id, UserRow.name, UserRow.role, UserRow.created_at)
# Every request looks its token or session up: both statements are built once.
_TOKEN_OWNER = (
    select(ApiTokenRow.id.label("token_id"), ApiTokenRow.last_used_at, *_OWNER)
    .join(UserRow, ApiTokenRow.user_id == UserRow.id)
    .where(ApiTokenRow.token_digest == bindparam("digest"))
)
_SESSION_OWNER = (
    select(WebSessionRow.csrf_token, WebSessionRow.expires_at, *_OWNER)
    .join(UserRow, WebSessionRow.user_id == UserRow.id)
    .where(WebSessionRow.session_digest == bindparam("digest"))
)


class UsersMixin:
    """Users, API tokens and web sessions of :class:`~leadferry.store.Store` (which provides
    the sessions and the clock)."""

    _lookup: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]
    _now: Callable[[], datetime]
    _flush_unique: Callable[[Session, str], None]

    # -- users ------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, role: str) -> User:
        """Save a new user with an argon2 hash of ``password``.

        Raises:
            ConfigError: an invalid name, an unknown role or a password that is too short.
            ConflictError: the name is taken.
        """
        check_user_name(name)
        check_role(role)
        check_password(password)
        hashed = hash_password(password)  # before the write lock: hashing takes a while
        now = self._now()
        with self._write() as session:
            if _find_user(session, name) is not None:
                raise ConflictError(f"a user named {name!r} already exists")
            row = UserRow(
                name=name, password_hash=hashed, role=role, created_at=now, updated_at=now
            )
            session.add(row)
            self._flush_unique(session, f"a user named {name!r} already exists")
            logger.info("added user %s (%s)", name, role)
            return _to_user(row)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self._lookup() as session:
            return [
                _to_user(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))
            ]

    def get_user(self, name: str) -> User:
        """The user called ``name``.

        Raises:
            NotFoundError: no such user.
        """
        with self._lookup() as session:
            return _to_user(_user_row(session, name))

    def user_count(self) -> int:
        """How many users there are (none: the web UI has nobody to let in yet)."""
        with self._lookup() as session:
            return session.scalar(select(func.count(UserRow.id))) or 0

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password and end their web sessions (API tokens keep working).

        Raises:
            ConfigError: the password is too short.
            NotFoundError: no such user.
        """
        check_password(password)
        hashed = hash_password(password)
        with self._write() as session:
            row = _user_row(session, name)
            row.password_hash = hashed
            row.updated_at = self._now()
            session.execute(delete(WebSessionRow).where(WebSessionRow.user_id == row.id))
            logger.info("user %s: password changed, web sessions ended", name)

    def set_role(self, name: str, role: str) -> User:
        """Give a user another role; it applies to their open sessions and tokens at once.

        Raises:
            ConfigError: an unknown role, or ``name`` is the last admin and ``role`` is not admin.
            NotFoundError: no such user.
        """
        check_role(role)
        with self._write() as session:
            row = _user_row(session, name)
            if row.role == "admin" and role != "admin" and _admin_count(session) <= 1:
                raise ConfigError(
                    f"user {name!r} is the last admin: make another user admin first, "
                    "or nobody could manage users any more"
                )
            row.role = role
            row.updated_at = self._now()
            session.flush()
            logger.info("user %s is now %s", name, role)
            return _to_user(row)

    def remove_user(self, name: str) -> None:
        """Delete a user with their API tokens and web sessions.

        Raises:
            ConfigError: ``name`` is the last admin.
            NotFoundError: no such user.
        """
        with self._write() as session:
            row = _user_row(session, name)
            if row.role == "admin" and _admin_count(session) <= 1:
                raise ConfigError(
                    f"user {name!r} is the last admin: make another user admin before "
                    "removing this one"
                )
            # The foreign keys cascade too; deleting here does not depend on them being enforced.
            session.execute(delete(WebSessionRow).where(WebSessionRow.user_id == row.id))
            session.execute(delete(ApiTokenRow).where(ApiTokenRow.user_id == row.id))
            session.delete(row)
            logger.info("removed user %s", name)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user ``name`` if ``password`` is theirs, else None (whichever was wrong).

        An unknown name still costs one argon2 verification, so the time taken does not tell
        which names exist. A hash made with weaker parameters than today's is replaced.
        """
        with self._lookup() as session:
            row = _find_user(session, name)
        hashed = dummy_hash() if row is None else row.password_hash
        if not verify_password(hashed, password) or row is None:
            return None
        if needs_rehash(hashed):
            with self._write() as session:
                # Only if the password did not change meanwhile.
                session.execute(
                    update(UserRow)
                    .where(UserRow.id == row.id, UserRow.password_hash == hashed)
                    .values(password_hash=hash_password(password))
                )
        return _to_user(row)

    # -- API tokens -------------------------------------------------------------------------

    def create_token(self, user_name: str, token_name: str) -> tuple[ApiToken, str]:
        """A new API token for ``user_name``: its record and the token (``lf_...``).

        The token is returned only here: the store keeps its digest, so show it once.

        Raises:
            ConfigError: an empty token name, or one longer than 64 characters.
            NotFoundError: no such user.
        """
        token_name = token_name.strip()
        if not 0 < len(token_name) <= TOKEN_NAME_LENGTH:
            raise ConfigError(
                f"a token name needs 1 to {TOKEN_NAME_LENGTH} characters (what it is for, "
                "for example ci-export)"
            )
        plaintext = new_api_token()
        prefix = token_prefix(plaintext)
        assert prefix is not None  # new_api_token() makes well-formed tokens
        now = self._now()
        with self._write() as session:
            user = _user_row(session, user_name)
            row = ApiTokenRow(
                user_id=user.id,
                name=token_name,
                prefix=prefix,
                token_digest=digest(plaintext),
                created_at=now,
                last_used_at=None,
            )
            session.add(row)
            session.flush()
            logger.info("user %s: API token %d (%s) created", user_name, row.id, token_name)
            return _to_token(row, user.name), plaintext

    def list_tokens(self, user_name: str | None = None) -> list[ApiToken]:
        """The API tokens of ``user_name`` (of every user when None), oldest first.

        Raises:
            NotFoundError: no user ``user_name``.
        """
        query = (
            select(ApiTokenRow, UserRow.name)
            .join(UserRow, ApiTokenRow.user_id == UserRow.id)
            .order_by(ApiTokenRow.id)
        )
        with self._lookup() as session:
            if user_name is not None:
                query = query.where(ApiTokenRow.user_id == _user_row(session, user_name).id)
            return [_to_token(row, name) for row, name in session.execute(query)]

    def revoke_token(self, token_id: int, user_name: str | None = None) -> ApiToken:
        """Delete an API token; with ``user_name``, only if it is that user's.

        Returns the revoked token's record.

        Raises:
            NotFoundError: no token ``token_id``, or it belongs to another user than
                ``user_name`` (the same message: a user does not learn others' token ids).
        """
        with self._write() as session:
            found = (
                session.execute(
                    select(ApiTokenRow, UserRow.name)
                    .join(UserRow, ApiTokenRow.user_id == UserRow.id)
                    .where(ApiTokenRow.id == token_id)
                ).first()
                if 0 < token_id < 2**63  # a database id, or no token at all
                else None
            )
            if found is None or (user_name is not None and found[1] != user_name):
                whose = "" if user_name is None else f" of user {user_name!r}"
                raise NotFoundError(f"no API token with id {token_id}{whose}")
            row, owner = found
            session.delete(row)
            logger.info("user %s: API token %d (%s) revoked", owner, token_id, row.name)
            return _to_token(row, owner)

    def user_for_token(self, plaintext: str) -> User | None:
        """The user an API token belongs to; None for an unknown, revoked or malformed token.

        Records when the token was used (at most once per ``LAST_USED_RESOLUTION``).
        """
        if not isinstance(plaintext, str) or token_prefix(plaintext) is None:
            return None
        key = digest(plaintext)
        with self._lookup() as session:
            found = session.connection().execute(_TOKEN_OWNER, {"digest": key}).first()
        if found is None:
            return None
        now = self._now()
        if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
            with self._write() as session:
                result = session.execute(
                    update(ApiTokenRow)
                    .where(ApiTokenRow.id == found.token_id)
                    .values(last_used_at=now)
                )
            if not result.rowcount:  # revoked since it was read
                return None
        return _to_user(found)

    # -- web sessions -----------------------------------------------------------------------

    def create_session(self, user_name: str, lifetime: timedelta) -> tuple[str, WebSession]:
        """Log ``user_name`` in for ``lifetime``: the session id (for the cookie) and the session.

        The session id is returned only here; the store keeps its digest. The session carries a
        fresh CSRF token for the forms of the web UI.

        Raises:
            NotFoundError: no such user.
            ValueError: a lifetime that is not positive (a bug).
        """
        if lifetime <= timedelta(0):
            raise ValueError(f"a session lifetime must be positive, not {lifetime}")
        plain_id = new_secret()
        csrf_token = new_secret()
        now = self._now()
        with self._write() as session:
            user = _user_row(session, user_name)
            # This write takes the lock anyway: a good moment to sweep expired sessions.
            session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
            row = WebSessionRow(
                session_digest=digest(plain_id),
                user_id=user.id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=now + lifetime,
            )
            session.add(row)
            session.flush()
            logger.info("user %s: web session started", user_name)
            return plain_id, WebSession(_to_user(user), csrf_token, row.expires_at)

    def get_session(self, plain_id: str) -> WebSession | None:
        """The live session with id ``plain_id``, with its user as they are now; else None."""
        if not isinstance(plain_id, str) or not plain_id:
            return None
        now = self._now()
        with self._lookup() as session:
            found = session.connection().execute(_SESSION_OWNER, {"digest": digest(plain_id)})
            row = found.first()
        if row is None:
            return None
        if row.expires_at <= now:
            with self._write() as session:
                session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
            return None
        return WebSession(_to_user(row), row.csrf_token, row.expires_at)

    def end_session(self, plain_id: str) -> None:
        """Log a session out; an unknown or already ended session is no error."""
        if not plain_id:
            return
        with self._write() as session:
            session.execute(
                delete(WebSessionRow).where(WebSessionRow.session_digest == digest(plain_id))
            )

    def end_sessions(self, user_name: str) -> int:
        """End every web session of ``user_name``; returns how many there were.

        Raises:
            NotFoundError: no such user.
        """
        with self._write() as session:
            user = _user_row(session, user_name)
            result = session.execute(delete(WebSessionRow).where(WebSessionRow.user_id == user.id))
            logger.info("user %s: %d web sessions ended", user_name, result.rowcount)
            return int(result.rowcount)


def _find_user(session: Session, name: str) -> UserRow | None:
    return find_named(session, UserRow, name)


def _user_row(session: Session, name: str) -> UserRow:
    return named_row(session, UserRow, name, "user")


def _admin_count(session: Session) -> int:
    # Locks the admins' rows on PostgreSQL, so two demotions cannot both see two admins;
    # on SQLite the write transaction's BEGIN IMMEDIATE already serialises them.
    query = select(UserRow.id).where(UserRow.role == "admin").with_for_update()
    return len(session.scalars(query).all())


def _to_user(row: UserRow | Row[Any]) -> User:
    return User(id=row.id, name=row.name, role=row.role, created_at=row.created_at)


def _to_token(row: ApiTokenRow, user: str) -> ApiToken:
    return ApiToken(
        id=row.id,
        user=user,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )
