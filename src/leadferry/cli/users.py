"""``leadferry users`` and ``leadferry tokens``: who may use the web UI and the REST API.

Passwords never come from a flag (it would stay in the shell's history and in ``ps``): they are
asked for twice, hidden, in a terminal, and otherwise read from the first line of standard input,
so scripts can pipe them in (account secrets are read the same way, ``common.read_secret``).
An API token is printed once, alone on standard output, so that
``TOKEN=$(leadferry tokens create ...)`` keeps it; the notes around it go to standard error.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from leadferry.cli.common import console, open_store, print_json, print_table, read_secret

app = typer.Typer(
    help="Add users of the web UI and REST API, set their password and role, remove them.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="Create, list and revoke API tokens for the REST API.", no_args_is_help=True
)

UserArg = Annotated[str, typer.Argument(help="The user's login name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def read_password() -> str:
    """A new password: asked twice without echo in a terminal, else stdin's first line.

    Raises:
        ConfigError: standard input is empty, or the password is too short.
    """
    from leadferry.auth import check_password

    password = read_secret("password", confirm=True)
    check_password(password)
    return password


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


# -- users ---------------------------------------------------------------------------------


@app.command("add")
def add(
    name: UserArg,
    role: Annotated[
        str, typer.Option("--role", help="viewer (reads), editor (changes data) or admin.")
    ] = "viewer",
) -> None:
    """Add a user; the password is asked for (or read from standard input)."""
    from leadferry.auth import check_role

    check_role(role)  # before asking for a password that would be thrown away
    password = read_password()
    with open_store() as store:
        store.add_user(name, password, role)
    console.print(f"added {role} {name}")


@app.command("list")
def list_(json_: JsonFlag = False) -> None:
    """List users with their role, when they were added and how many API tokens they have."""
    with open_store() as store:
        users = store.list_users()
        tokens = store.list_tokens()
    counts = {user.name: 0 for user in users}
    for token in tokens:
        counts[token.user] = counts.get(token.user, 0) + 1
    if json_:
        print_json(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "created": _when(u.created_at),
                    "tokens": counts[u.name],
                }
                for u in users
            ]
        )
        return
    print_table(
        None,
        ["user", "role", "created", "tokens"],
        [(u.name, u.role, _when(u.created_at), counts[u.name]) for u in users],
    )


@app.command("passwd")
def passwd(name: UserArg) -> None:
    """Set a user's password; it ends their web sessions (API tokens keep working)."""
    password = read_password()
    with open_store() as store:
        store.set_password(name, password)
    console.print(f"changed the password of {name}; their web sessions ended")


@app.command("role")
def role(
    name: UserArg,
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, editor or admin.")],
) -> None:
    """Give a user another role (the last admin stays admin)."""
    with open_store() as store:
        store.set_role(name, new_role)
    console.print(f"{name} is now {new_role}")


@app.command("remove")
def remove(name: UserArg) -> None:
    """Remove a user with their API tokens and web sessions (not the last admin)."""
    with open_store() as store:
        store.remove_user(name)
    console.print(f"removed user {name}")


# -- tokens --------------------------------------------------------------------------------


@tokens_app.command("create")
def create_token(
    token_name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci-export.")],
    user: Annotated[str, typer.Option("--user", "-u", help="The user the token acts as.")],
) -> None:
    """Create an API token and print it, once: only its digest is kept."""
    with open_store() as store:
        token, plaintext = store.create_token(user, token_name)
    typer.echo(f"API token {token.id} ({token.name}) of user {token.user}:", err=True)
    typer.echo(plaintext)
    typer.echo("Copy it now: it will not be shown again.", err=True)


@tokens_app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
    json_: JsonFlag = False,
) -> None:
    """List API tokens: id, user, name, prefix, created, last used (never the token)."""
    with open_store() as store:
        tokens = store.list_tokens(user)
    if json_:
        print_json(
            [
                {
                    "id": t.id,
                    "user": t.user,
                    "name": t.name,
                    "prefix": t.prefix,
                    "created": _when(t.created_at),
                    "last_used": _when(t.last_used_at) or None,
                }
                for t in tokens
            ]
        )
        return
    from rich.markup import escape

    print_table(
        None,
        ["id", "user", "name", "prefix", "created", "last used"],
        [
            # Token names are free text: no rich markup in them.
            (
                t.id,
                t.user,
                escape(t.name),
                f"lf_{t.prefix}…",
                _when(t.created_at),
                _when(t.last_used_at),
            )
            for t in tokens
        ],
    )


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="Its id in tokens list.")],
) -> None:
    """Revoke an API token: requests with it are refused from now on."""
    with open_store() as store:
        token = store.revoke_token(token_id)
    typer.echo(f"revoked API token {token.id} ({token.name}) of user {token.user}")
