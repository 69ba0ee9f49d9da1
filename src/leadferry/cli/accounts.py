"""``leadferry accounts``: vendor logins, with their secrets encrypted at rest."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from leadferry.cli.common import console, key_values, open_store, print_json, print_table
from leadferry.errors import ConfigError

if TYPE_CHECKING:
    from leadferry.connectors.base import Connector

app = typer.Typer(
    help="Add, test, rotate, rename and remove vendor accounts.", no_args_is_help=True
)

SetFlag = Annotated[
    list[str] | None,
    typer.Option("--set", help="A field value, NAME=VALUE (repeatable)."),
]


def split_fields(
    connector: type[Connector],
    given: dict[str, str],
    *,
    ask_missing_secrets: bool,
    require: bool,
) -> tuple[dict[str, str], dict[str, str]]:
    """Sort field values into (config, secrets), asking for secrets that were not given.

    A secret comes from ``--set``, else from ``LEADFERRY_<FIELD>``, else from a hidden prompt.
    """
    for field_id in given:
        connector.field(field_id)
    config: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for field in connector.fields:
        value = given.get(field.id)
        if value is None and field.secret and ask_missing_secrets:
            value = os.environ.get(f"LEADFERRY_{field.id.upper()}") or _prompt_secret(
                connector, field.id, field.label
            )
        if value is None or value == "":
            if field.required and (require or field.id in given):
                raise ConfigError(
                    f"{connector.label} accounts need {field.id} ({field.label}): "
                    f"add --set {field.id}=..."
                )
            continue
        (secrets if field.secret else config)[field.id] = value
    if "timezone" in config:
        from leadferry.dates import zone

        zone(config["timezone"])
    return config, secrets


def _prompt_secret(connector: type[Connector], field_id: str, label: str) -> str | None:
    if not sys.stdin.isatty():
        raise ConfigError(
            f"{connector.label} accounts need {field_id} ({label}): set LEADFERRY_"
            f"{field_id.upper()} or run in a terminal to be asked for it"
        )
    return str(typer.prompt(label, hide_input=True))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the account.")],
    connector: Annotated[str, typer.Option("--connector", "-c", help="leadexec, salesexec...")],
    set_: SetFlag = None,
) -> None:
    """Add an account. Secrets not given are read from LEADFERRY_<FIELD> or asked for."""
    from leadferry.connectors import get_connector

    connector_cls = get_connector(connector)
    config, secrets = split_fields(
        connector_cls, key_values(set_ or [], "--set"), ask_missing_secrets=True, require=True
    )
    with open_store() as store:
        store.create_account(name, connector_cls.name, config, secrets)
    console.print(f"added {connector_cls.label} account {name}")


@app.command("list")
def list_(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List accounts with their connector, masked secrets and how many datasets use them."""
    with open_store() as store:
        accounts = store.list_accounts()
    if json_:
        print_json(
            [
                {
                    "name": a.name,
                    "connector": a.connector,
                    "config": a.config,
                    "secrets": a.masked,
                    "datasets": a.dataset_count,
                }
                for a in accounts
            ]
        )
        return
    print_table(
        None,
        ["account", "connector", "settings", "secrets", "datasets"],
        [
            (
                a.name,
                a.connector,
                " ".join(f"{k}={v}" for k, v in sorted(a.config.items())),
                " ".join(f"{k}={v}" for k, v in sorted(a.masked.items())),
                a.dataset_count,
            )
            for a in accounts
        ],
    )


@app.command("test")
def test(name: Annotated[str, typer.Argument(help="The account to test.")]) -> None:
    """Test the connection: make one authenticated call to the vendor."""
    from leadferry.cli.common import settings
    from leadferry.runner import make_client, open_connector

    with open_store() as store:
        account = store.get_account(name)
    config = settings()
    with make_client(config) as client:
        connector = open_connector(account, client, config)
        connector.check_connection()
    console.print(f"ok: {connector.label} accepted the credentials of account {name}")


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
    """Change non-secret fields (base URL, time zone); use rotate for secrets."""
    _update(name, set_, ask_secrets=False)
    console.print(f"updated account {name}")


def _update(name: str, pairs: list[str] | None, *, ask_secrets: bool) -> None:
    """Apply ``--set`` values to an account, asking for every secret when *ask_secrets*."""
    from leadferry.connectors import get_connector

    with open_store() as store:
        connector = get_connector(store.get_account(name).connector)
        given = key_values(pairs or [], "--set")
        config, secrets = split_fields(
            connector, given, ask_missing_secrets=ask_secrets, require=False
        )
        store.update_account(name, config=config, secrets=secrets or None)


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
