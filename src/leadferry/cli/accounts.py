"""``leadferry accounts``: vendor logins, with their secrets encrypted at rest."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from leadferry.cli.common import (
    console,
    key_values,
    open_store,
    print_json,
    print_table,
    read_secret,
)
from leadferry.errors import ConfigError

if TYPE_CHECKING:
    from leadferry.connectors.base import Connector, CredentialField

app = typer.Typer(
    help="Add, test, rotate, rename and remove vendor accounts.", no_args_is_help=True
)

SetFlag = Annotated[
    list[str] | None,
    typer.Option("--set", help="A field value, NAME=VALUE (repeatable)."),
]


def _ask_secret(_connector: type[Connector], field: CredentialField) -> str | None:
    """A secret not given with --set: from ``LEADFERRY_<FIELD>``, else asked for in a terminal,
    else the next line of standard input (one line per secret, in the connector's order)."""
    from_env = os.environ.get(f"LEADFERRY_{field.id.upper()}")
    if from_env:
        return from_env
    return read_secret(field.label, f"LEADFERRY_{field.id.upper()}")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the account.")],
    connector: Annotated[str, typer.Option("--connector", "-c", help="leadexec, salesexec...")],
    set_: SetFlag = None,
) -> None:
    """Add an account. Secrets not given come from LEADFERRY_<FIELD>, a prompt, or stdin."""
    from leadferry.connectors import get_connector
    from leadferry.service.accounts import add_account

    with open_store() as store:
        add_account(store, name, connector, key_values(set_ or [], "--set"), ask=_ask_secret)
    console.print(f"added {get_connector(connector).label} account {name}")


@app.command("list")
def list_(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List accounts with their connector, masked secrets and how many datasets use them."""
    from leadferry.service.accounts import account_public

    with open_store() as store:
        accounts = store.list_accounts()
    if json_:
        print_json([account_public(a) for a in accounts])
        return
    print_table(
        None,
        ["account", "connector", "settings", "secrets", "datasets"],
        [
            (
                a.name,
                a.connector,
                " ".join(f"{k}={v}" for k, v in sorted(a.config.items())),
                " ".join(f"{k}={v}" for k, v in sorted(a.masked.items()))
                if a.readable
                else "unreadable: rotate them",
                a.dataset_count,
            )
            for a in accounts
        ],
    )


@app.command("test")
def test(name: Annotated[str, typer.Argument(help="The account to test.")]) -> None:
    """Test the connection: make one authenticated call to the vendor."""
    from leadferry.cli.common import settings
    from leadferry.service.accounts import check_connection

    with open_store() as store:
        label = check_connection(store, settings(), name)
    console.print(f"ok: {label} accepted the credentials of account {name}")


@app.command("lookup")
def lookup(
    name: Annotated[str, typer.Argument(help="The account to read the values with.")],
    parameter: Annotated[
        str, typer.Argument(help="A report parameter with a list, e.g. lead_type_uid.")
    ],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the values the vendor offers for a report parameter (SalesExec's lead_type_uid)."""
    from leadferry.cli.common import settings
    from leadferry.clock import utc_now
    from leadferry.service.accounts import look_up

    with open_store() as store:
        choices = look_up(store, settings(), name, parameter, utc_now())
    if json_:
        print_json([{"value": value, "label": label} for value, label in choices])
        return
    print_table(f"{parameter} values of account {name}", ["value", "label"], choices)


@app.command("rotate")
def rotate(
    name: Annotated[str, typer.Argument(help="The account whose secret changes.")],
    set_: SetFlag = None,
) -> None:
    """Replace an account's secrets (and any other field given); its datasets keep working."""
    _update(name, set_, ask_secrets=True)
    console.print(f"rotated the secrets of account {name}")


@app.command("edit")
def edit(
    name: Annotated[str, typer.Argument(help="The account to change.")],
    set_: SetFlag = None,
) -> None:
    """Change non-secret fields (base URL, time zone); a new base URL asks for the secrets again."""
    from leadferry.connectors import get_connector
    from leadferry.service.accounts import ADDRESS_FIELDS

    given = key_values(set_ or [], "--set")
    with open_store() as store:
        connector = get_connector(store.get_account(name).connector)
    secret = [field for field in given if connector.field(field).secret]
    if secret:
        raise ConfigError(
            f"{', '.join(secret)} is a secret: change it with `leadferry accounts rotate {name}`"
        )
    moving = any(pair.partition("=")[0].strip() in ADDRESS_FIELDS for pair in set_ or [])
    _update(name, set_, ask_secrets=moving)
    console.print(f"updated account {name}")


def _update(name: str, pairs: list[str] | None, *, ask_secrets: bool) -> None:
    """Apply ``--set`` values to an account, asking for every secret when *ask_secrets*."""
    from leadferry.service.accounts import update_account

    with open_store() as store:
        update_account(
            store, name, key_values(pairs or [], "--set"), ask=_ask_secret if ask_secrets else None
        )


@app.command("rename")
def rename(
    name: Annotated[str, typer.Argument(help="The current name.")],
    new_name: Annotated[str, typer.Argument(help="The new name.")],
) -> None:
    """Rename an account; its datasets follow."""
    with open_store() as store:
        store.rename_account(name, new_name)
    console.print(f"renamed account {name} to {new_name}")


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The account to remove.")]) -> None:
    """Remove an account (refused while datasets use it)."""
    with open_store() as store:
        store.remove_account(name)
    console.print(f"removed account {name}")
