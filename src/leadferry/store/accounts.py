"""Accounts in the store: one vendor login each, its secrets one Fernet token (``secrets.py``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadferry.errors import ConfigError, ConflictError
from leadferry.settings import Settings
from leadferry.store.keys import open_secret_box
from leadferry.store.orm import AccountRow, DatasetRow
from leadferry.store.queries import account_row, find_account
from leadferry.store.records import Account, AccountLine, AccountSummary, check_account_name
from leadferry.store.secrets import SecretBox, mask

logger = logging.getLogger(__name__)


class AccountsMixin:
    """The accounts of :class:`~leadferry.store.Store` (which provides the sessions, the clock
    and the key)."""

    _read: Callable[[], AbstractContextManager[Session]]
    _lookup: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]
    _now: Callable[[], datetime]
    _flush_unique: Callable[[Session, str], None]
    _settings: Settings
    _box: SecretBox | None
    _box_lock: threading.Lock

    def create_account(
        self, name: str, connector: str, config: dict[str, str], secrets: dict[str, str]
    ) -> Account:
        """Save a new account; its secrets are encrypted.

        Raises:
            ConfigError: an invalid name, or an unusable secret key.
            ConflictError: the name is taken.
        """
        check_account_name(name)
        if not connector:
            raise ConfigError("an account needs a connector")
        token = self._secret_box().encrypt(dict(secrets))
        now = self._now()
        with self._write() as session:
            if find_account(session, name) is not None:
                raise ConflictError(f"an account named {name!r} already exists")
            row = AccountRow(
                name=name,
                connector=connector,
                config=dict(config),
                secrets=token,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            self._flush_unique(session, f"an account named {name!r} already exists")
            logger.info("created account %s (%s)", name, connector)
            return self._account(row)

    def get_account(self, name: str) -> Account:
        """The account called ``name``, secrets decrypted.

        Raises:
            NotFoundError: no such account.
            ConfigError: its secrets cannot be decrypted with the current key.
        """
        with self._read() as session:
            return self._account(account_row(session, name))

    def account_line(self, name: str) -> AccountLine:
        """The account called ``name`` without its secrets: nothing is decrypted, so it reads
        under a wrong key too, and, as it shows no run, no dead run is settled first (a list of
        datasets looks up each one's account for its zone).

        Raises:
            NotFoundError: no such account.
        """
        with self._lookup() as session:
            row = account_row(session, name)
            return AccountLine(row.name, row.connector, dict(row.config))

    def list_accounts(self) -> list[AccountSummary]:
        """Every account by name, secrets masked, with how many datasets use it."""
        count = (
            select(func.count(DatasetRow.id))
            .where(DatasetRow.account_id == AccountRow.id)
            .scalar_subquery()
        )
        with self._read() as session:
            rows = session.execute(select(AccountRow, count).order_by(AccountRow.name)).all()
            summaries = []
            for row, dataset_count in rows:
                account = self._account(row)
                summaries.append(
                    AccountSummary(
                        name=row.name,
                        connector=row.connector,
                        config=dict(row.config),
                        masked={k: mask(v.get_secret_value()) for k, v in account.secrets.items()},
                        dataset_count=dataset_count,
                        created_at=row.created_at,
                        readable=account.unreadable is None,
                        tested_at=row.tested_at,
                        test_ok=row.test_ok,
                        test_message=row.test_message or "",
                    )
                )
            return summaries

    def record_account_test(self, name: str, ok: bool, message: str) -> None:
        """Remember how the connection test of account *name* went, now.

        Raises:
            NotFoundError: no account ``name``.
        """
        with self._write() as session:
            row = account_row(session, name)
            row.tested_at, row.test_ok, row.test_message = self._now(), ok, message

    def rename_account(self, name: str, new_name: str) -> Account:
        """Rename an account; its datasets follow.

        Raises:
            NotFoundError: no account ``name``.
            ConflictError: ``new_name`` is taken.
        """
        check_account_name(new_name)
        with self._write() as session:
            row = account_row(session, name)
            if new_name == name:
                return self._account(row)
            if find_account(session, new_name) is not None:
                raise ConflictError(f"an account named {new_name!r} already exists")
            row.name = new_name
            row.updated_at = self._now()
            self._flush_unique(session, f"an account named {new_name!r} already exists")
            logger.info("renamed account %s to %s", name, new_name)
            return self._account(row)

    def update_account(
        self,
        name: str,
        config: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> Account:
        """Set some config or secret fields of an account, keeping the others.

        Rotating a secret is setting it anew: the datasets of the account keep working. Secrets
        the current key cannot read are replaced by those given.

        Raises:
            NotFoundError: no such account.
            ConfigError: secrets given while the key file is missing (or the key invalid).
        """
        with self._write() as session:
            row = account_row(session, name)
            if config:
                row.config = {**row.config, **config}
            if secrets:
                box = self._secret_box()
                kept = {k: v.get_secret_value() for k, v in self._account(row).secrets.items()}
                row.secrets = box.encrypt({**kept, **secrets})
                logger.info("account %s: secrets %s replaced", name, ", ".join(sorted(secrets)))
            row.updated_at = self._now()
            session.flush()
            return self._account(row)

    def remove_account(self, name: str) -> None:
        """Delete an account that no dataset uses.

        Raises:
            NotFoundError: no such account.
            ConflictError: datasets use it (the message names them).
        """
        with self._write() as session:
            row = account_row(session, name)
            users = session.scalars(
                select(DatasetRow.name)
                .where(DatasetRow.account_id == row.id)
                .order_by(DatasetRow.name)
            ).all()
            if users:
                raise ConflictError(
                    f"account {name!r} is used by {_plural(len(users), 'dataset')} "
                    f"({', '.join(users)}): move them to another account or remove them first"
                )
            session.delete(row)
            logger.info("removed account %s", name)

    def _secret_box(self) -> SecretBox:
        with self._box_lock:
            if self._box is None:
                with self._read() as session:
                    self._box = open_secret_box(self._settings, session)
            return self._box

    def _account(self, row: AccountRow) -> Account:
        """The account of *row*; its secrets marked unreadable (with how to recover) when the
        key is wrong or missing, so that whatever needs no secret keeps working."""
        try:
            secrets = self._secret_box().decrypt(row.secrets, row.name)
            unreadable = None
        except ConfigError as exc:
            secrets, unreadable = {}, str(exc)
        return Account(
            id=row.id,
            name=row.name,
            connector=row.connector,
            config=dict(row.config),
            secrets={k: SecretStr(v) for k, v in secrets.items()},
            created_at=row.created_at,
            updated_at=row.updated_at,
            unreadable=unreadable,
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
