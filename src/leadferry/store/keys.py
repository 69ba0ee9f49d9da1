"""The store's side of the secret key: opening it, and moving every secret to a new one.

Opening settles a key change that stopped halfway, and refuses to create a key file while
accounts hold secrets (:func:`open_secret_box`). :meth:`KeysMixin.rekey` re-encrypts every
account in one transaction; the key file is replaced only after it commits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadferry.errors import ConfigError
from leadferry.store.orm import AccountRow
from leadferry.store.secrets import (
    ENV_VAR,
    NEW_KEY_ENV_VAR,
    SecretBox,
    commit_staged_key,
    discard_staged_key,
    generate_key,
    settle_staged_key,
    stage_key_file,
)

if TYPE_CHECKING:
    from leadferry.settings import Settings

logger = logging.getLogger(__name__)

FORGOTTEN = ""
"""What an account's secrets become when ``rekey --forget-unreadable`` drops them: no key
opens it, so the account shows them unreadable until they are re-entered."""


def open_secret_box(settings: Settings, session: Session) -> SecretBox:
    """The box of the configured key, after settling an interrupted key change.

    Raises:
        ConfigError: the key is invalid, or the key file is missing while accounts have secrets.
    """
    with_secrets = AccountRow.secrets != FORGOTTEN
    if settings.secret_key is None:
        sample = session.scalars(select(AccountRow.secrets).where(with_secrets).limit(1)).first()
        settle_staged_key(settings.key_file, sample)
    count = session.scalar(select(func.count(AccountRow.id)).where(with_secrets)) or 0
    return SecretBox.from_settings(settings, accounts_with_secrets=count)


@dataclass(frozen=True, slots=True)
class Rekeyed:
    """What ``rekey`` did: the accounts re-encrypted, and those whose secrets were forgotten."""

    accounts: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    key_source: str = ""


class KeysMixin:
    """``Store.rekey`` (the store provides its settings, sessions and secret box)."""

    _settings: Settings
    _box: SecretBox | None
    _read: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]

    def rekey(self, *, forget_unreadable: bool = False) -> Rekeyed:
        """Re-encrypt every account's secrets under a new key, in one transaction.

        With the key file, the new key is random; it is written beside the file first and put
        in its place once the store has committed. With ``LEADFERRY_SECRET_KEY``, the new key
        is taken from ``LEADFERRY_NEW_SECRET_KEY``, and the caller must then set the former to
        it. Secrets the current key cannot read (or all of them, when the key file is missing)
        stop the change, unless *forget_unreadable*: then they are dropped, to be re-entered
        with ``accounts rotate``.

        Raises:
            ConfigError: unreadable secrets without *forget_unreadable*, or no usable new key.
        """
        from_env = self._settings.secret_key is not None
        new_key = self._new_key(from_env)
        source = f"the new key in {NEW_KEY_ENV_VAR}" if from_env else "the new key"
        new_box = SecretBox.from_key(new_key, source)
        current = self._current_box()
        path = self._settings.key_file
        done = Rekeyed(key_source=ENV_VAR if from_env else f"the key file {path}")
        try:
            with self._write() as session:
                rows = session.scalars(
                    select(AccountRow)
                    .where(AccountRow.secrets != FORGOTTEN)
                    .order_by(AccountRow.name)
                )
                for row in rows:
                    values = _readable(current, row)
                    if values is None:
                        done.forgotten.append(row.name)
                        row.secrets = FORGOTTEN
                    else:
                        row.secrets = new_box.encrypt(values)
                        done.accounts.append(row.name)
                if done.forgotten and not forget_unreadable:
                    raise ConfigError(
                        f"the current key cannot read the secrets of {', '.join(done.forgotten)}"
                        ": restore the key they were saved with first, or give "
                        "--forget-unreadable to drop them (then re-enter them with "
                        "`leadferry accounts rotate NAME`)"
                    )
                session.flush()
                if not from_env:
                    stage_key_file(path, new_key)
        except BaseException:
            if not from_env:
                discard_staged_key(path)
            raise
        # Committed: from here the store needs the new key.
        if not from_env:
            commit_staged_key(path)
        self._box = new_box
        logger.warning(
            "secrets of %d accounts re-encrypted under a new key; %d forgotten",
            len(done.accounts),
            len(done.forgotten),
        )
        return done

    def _new_key(self, from_env: bool) -> str:
        if not from_env:
            return generate_key()
        key = os.environ.get(NEW_KEY_ENV_VAR, "").strip()
        if not key:
            raise ConfigError(
                f"the key comes from {ENV_VAR}: put the new key in {NEW_KEY_ENV_VAR} for this "
                "command (make one with `leadferry secrets new-key`), then set "
                f"{ENV_VAR} to it wherever leadferry runs"
            )
        return key

    def _current_box(self) -> SecretBox | None:
        """The current key's box, or None when there is none to read with (a missing or
        invalid key): every secret is then unreadable."""
        try:
            with self._read() as session:
                return open_secret_box(self._settings, session)
        except ConfigError:
            return None


def _readable(box: SecretBox | None, row: AccountRow) -> dict[str, str] | None:
    """The secrets of *row*, or None when *box* cannot read them (or there is no box)."""
    if box is None:
        return None
    try:
        return box.decrypt(row.secrets, row.name)
    except ConfigError:
        return None
