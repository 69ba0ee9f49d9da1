"""``leadferry secrets``: the key that encrypts account secrets."""

from __future__ import annotations

from typing import Annotated

import typer

from leadferry.cli.common import console, open_store

app = typer.Typer(help="The key that encrypts account secrets.", no_args_is_help=True)


@app.command("rekey")
def rekey(
    forget_unreadable: Annotated[
        bool,
        typer.Option(
            "--forget-unreadable",
            help="Drop secrets the current key cannot read (a lost key), to re-enter them "
            "with `accounts rotate`.",
        ),
    ] = False,
) -> None:
    """Re-encrypt every account's secrets under a new key, in one transaction, then replace
    the key file. With LEADFERRY_SECRET_KEY, the new key is read from
    LEADFERRY_NEW_SECRET_KEY: set LEADFERRY_SECRET_KEY to it afterwards."""
    with open_store() as store:
        done = store.rekey(forget_unreadable=forget_unreadable)
    console.print(
        f"re-encrypted the secrets of {len(done.accounts)} account(s) under a new key",
        highlight=False,
    )
    if done.key_source.startswith("the key file"):
        console.print(f"{done.key_source} holds it now: back it up", highlight=False)
    else:
        console.print(
            "now set LEADFERRY_SECRET_KEY to the value of LEADFERRY_NEW_SECRET_KEY wherever "
            "leadferry runs",
            highlight=False,
        )
    for name in done.forgotten:
        console.print(
            f"forgot the unreadable secrets of {name}: `leadferry accounts rotate {name}`",
            highlight=False,
        )


@app.command("new-key")
def new_key() -> None:
    """Print a new random key, for LEADFERRY_SECRET_KEY or LEADFERRY_NEW_SECRET_KEY."""
    from leadferry.store import generate_key

    typer.echo(generate_key())
