"""Accounts: sorting field values into settings and secrets, adding, changing, testing, and
listing the values the vendor offers for a parameter (lookups)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from leadferry.connectors import get_connector
from leadferry.errors import ConfigError

if TYPE_CHECKING:
    import httpx2

    from leadferry.connectors.base import Choice, Connector, CredentialField
    from leadferry.settings import Settings
    from leadferry.store import Account, AccountSummary, Store

ADDRESS_FIELDS = ("base_url",)
"""Fields that decide where an account's requests, secrets included, are sent."""

AskSecret = Callable[["type[Connector]", "CredentialField"], "str | None"]
"""Asked for a secret the caller did not give (the CLI prompts; the web and API never ask)."""


def sort_fields(
    connector: type[Connector],
    given: Mapping[str, str],
    *,
    require: bool,
    ask: AskSecret | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Sort field values into (settings, secrets); ask for missing secrets when *ask* is given.

    Raises:
        ConfigError: an unknown field, a required field missing (when *require*, or given
            empty), or an unknown time zone.
    """
    for field_id in given:
        connector.field(field_id)
    config: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for field in connector.fields:
        value = given.get(field.id)
        if value is None and field.secret and ask is not None:
            value = ask(connector, field)
        if value is None or value == "":
            if field.required and (require or field.id in given):
                raise ConfigError(f"{connector.label} accounts need {field.id} ({field.label})")
            continue
        (secrets if field.secret else config)[field.id] = value
    if "timezone" in config:
        from leadferry.dates import zone

        zone(config["timezone"])
    for field in connector.fields:
        if field.id in ADDRESS_FIELDS and field.id in config:
            from leadferry.connectors.base import check_http_url

            check_http_url(config[field.id], f"{connector.label} {field.label}")
    return config, secrets


def add_account(
    store: Store,
    name: str,
    connector_name: str,
    given: Mapping[str, str],
    *,
    ask: AskSecret | None = None,
) -> Account:
    """Save a new account from field values.

    Raises:
        NotFoundError: an unknown connector.
        ConfigError: an unknown field, a missing required field.
        ConflictError: the name is taken.
    """
    connector = get_connector(connector_name)
    config, secrets = sort_fields(connector, given, require=True, ask=ask)
    return store.create_account(name, connector.name, config, secrets)


def update_account(
    store: Store,
    name: str,
    given: Mapping[str, str],
    *,
    ask: AskSecret | None = None,
) -> None:
    """Change some fields of an account; secrets given (or asked for) replace the stored ones.

    A new address (base URL) must come with the secrets: otherwise whoever may edit accounts
    could point the account at their own server and receive its stored secrets. Secrets the
    current key cannot read are re-entered whole: every required one must be given.

    Raises:
        NotFoundError: no such account.
        ConfigError: an unknown field, an empty required field, an unknown time zone, an
            address that is not an http(s) URL, a new address without the secrets, or only
            some of the secrets of an account whose secrets are unreadable.
    """
    account = store.get_account(name)
    connector = get_connector(account.connector)
    config, secrets = sort_fields(connector, given, require=False, ask=ask)
    secret_ids = [f.id for f in connector.fields if f.secret]
    if account.unreadable is not None and secrets:
        missing = [
            f.id for f in connector.fields if f.secret and f.required and f.id not in secrets
        ]
        if missing:
            raise ConfigError(
                f"the secrets of account {name} are unreadable: give all of them again "
                f"(missing: {', '.join(missing)})"
            )
    for field in connector.fields:
        if field.id not in ADDRESS_FIELDS or field.id not in config:
            continue
        if (
            config[field.id] != account.config.get(field.id)
            and not set(secret_ids) <= secrets.keys()
        ):
            raise ConfigError(
                f"a new {field.label} would receive this account's secrets: give "
                f"{' and '.join(secret_ids)} again with it (rotate the secret)"
            )
    store.update_account(name, config=config, secrets=secrets or None)


def check_new_account(
    settings: Settings,
    name: str,
    connector_name: str,
    given: Mapping[str, str],
    client: httpx2.Client | None = None,
) -> str:
    """Make one authenticated call with an account not saved yet; return the vendor's label.

    Raises:
        NotFoundError: an unknown connector.
        ConfigError: an unknown field, a missing required field.
        AuthError: the vendor refused the credentials.
        ConnectorError: the vendor could not be reached.
    """
    from pydantic import SecretStr

    from leadferry.clock import utc_now
    from leadferry.run.client import connected
    from leadferry.store import Account

    connector = get_connector(connector_name)
    config, secrets = sort_fields(connector, given, require=True)
    now = utc_now()
    unsaved = Account(
        id=0,
        name=name,
        connector=connector.name,
        config=config,
        secrets={k: SecretStr(v) for k, v in secrets.items()},
        created_at=now,
        updated_at=now,
    )
    with connected(unsaved, settings, client) as vendor:
        vendor.check_connection()
    return connector.label


def add_tested_account(
    store: Store,
    settings: Settings,
    name: str,
    connector_name: str,
    given: Mapping[str, str],
    *,
    client: httpx2.Client | None = None,
    save_anyway: bool = False,
) -> tuple[bool, str]:
    """Test a new account's credentials with the vendor, then add it with the test recorded
    (as Test connection records it); return whether the vendor accepted them, and what it said
    (scrubbed). A refused or unreachable account is not added unless *save_anyway*.

    Raises:
        ConfigError: an invalid name, a name taken (ConflictError), an unknown connector
            (NotFoundError) or bad fields: checked before the vendor is called.
    """
    from leadferry.errors import ConflictError, ConnectorError
    from leadferry.scrub import scrub
    from leadferry.store.records import check_account_name

    check_account_name(name)
    sort_fields(get_connector(connector_name), given, require=True)
    if any(account.name == name for account in store.list_accounts()):
        raise ConflictError(f"an account named {name!r} already exists")
    try:
        label = check_new_account(settings, name, connector_name, given, client)
        ok, said = True, f"{label} accepted the credentials"
    except ConnectorError as exc:
        ok, said = False, scrub(str(exc))
    if ok or save_anyway:
        add_account(store, name, connector_name, given)
        store.record_account_test(name, ok, said)
    return ok, said


def check_connection(
    store: Store, settings: Settings, name: str, client: httpx2.Client | None = None
) -> str:
    """Make one authenticated call with the account; return the vendor's label.

    The call goes through *client* when given, otherwise through a client of its own. The
    account remembers when it was tested and how it went (the reason, scrubbed, if it failed).

    Raises:
        NotFoundError: no such account.
        AuthError: the vendor refused the credentials.
        ConnectorError: the vendor could not be reached.
    """
    from leadferry.errors import ConnectorError
    from leadferry.run.client import connected
    from leadferry.scrub import scrub

    account = store.get_account(name)
    with connected(account, settings, client) as connector:
        try:
            connector.check_connection()
        except ConnectorError as exc:
            store.record_account_test(name, False, scrub(str(exc)))
            raise
    store.record_account_test(name, True, f"{connector.label} accepted the credentials")
    return connector.label


def look_up(
    store: Store,
    settings: Settings,
    name: str,
    param_id: str,
    now: dt.datetime,
    client: httpx2.Client | None = None,
) -> list[Choice]:
    """The (value, label) pairs the vendor offers for parameter *param_id*, read with account
    *name*'s credentials through the lookup its connector declares.

    The call goes through *client* when given, otherwise through a client of its own.

    Raises:
        NotFoundError: no such account, or its connector lists no values for *param_id*.
        ConfigError: the account's secrets cannot be read.
        AuthError: the vendor refused the credentials.
        ConnectorError: the vendor failed or could not be reached.
    """
    from leadferry.connectors.base import RetryPolicy
    from leadferry.run.client import connected

    account = store.get_account(name)
    get_connector(account.connector).lookup_param(param_id)  # refused before any call
    with connected(account, settings, client) as connector:
        # A menu is worth one try, not a run's patient retries: free entry remains.
        connector.retry = RetryPolicy(attempts=1)
        return connector.look_up(param_id, now)


def account_public(account: AccountSummary) -> dict[str, Any]:
    """What may be shown of an account: settings and masked secrets, never the secrets."""
    return {
        "name": account.name,
        "connector": account.connector,
        "config": account.config,
        "secrets": account.masked,
        "secrets_readable": account.readable,
        "datasets": account.dataset_count,
    }
