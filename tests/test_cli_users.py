"""``leadferry users`` and ``leadferry tokens`` in-process (typer's runner)."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from leadferry import auth
from leadferry.cli import app, common
from leadferry.store import Store

cli = CliRunner()
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch):
    """Cheap argon2 parameters: the defaults cost a third of a second per hash."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def invoke(*args, input=None):
    return cli.invoke(app, list(args), input=input, catch_exceptions=False)


def ok(*args, input=None):
    result = invoke(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def fails(code, *args, input=None):
    result = invoke(*args, input=input)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def admin(migrated_settings):
    ok("users", "add", "ana", "--role", "admin", input=PASSWORD + "\n")
    return "ana"


def check_login(settings, name, password):
    with Store.open(settings) as store:
        return store.authenticate(name, password)


def test_a_user_is_added_with_a_password_from_stdin(settings, admin):
    ok("users", "add", "bo", input="only the first line\nis read\n")
    assert check_login(settings, "ana", PASSWORD).role == "admin"
    assert check_login(settings, "bo", "only the first line").role == "viewer"
    listed = json.loads(ok("users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["tokens"]) for u in listed] == [
        ("ana", "admin", 0),
        ("bo", "viewer", 0),
    ]
    table = ok("users", "list").stdout
    assert "ana" in table
    assert "admin" in table


def test_in_a_terminal_the_password_is_asked_twice_unechoed(settings, monkeypatch):
    monkeypatch.setattr(common, "stdin_is_terminal", lambda: True)
    result = ok("users", "add", "ana", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert PASSWORD not in result.output
    assert "Repeat" in result.output
    assert check_login(settings, "ana", PASSWORD) is not None
    typos = "new-password-1\nnew-password-2\nnew-password-3\nnew-password-3\n"
    result = ok("users", "passwd", "ana", input=typos)
    assert "do not match" in result.output
    assert check_login(settings, "ana", "new-password-3") is not None


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (["--role", "root"], PASSWORD, "unknown role 'root': use one of viewer, editor, admin"),
        ([], "sh0rt", "a password needs at least 8 characters"),
        ([], "", "no password given: give it on a line of standard input"),
    ],
)
def test_bad_input_exits_2_with_one_line(settings, args, input, message):
    line = fails(2, "users", "add", "bo", *args, input=input)
    assert message in line
    if input:
        assert input not in line


def test_a_duplicate_user_is_refused(admin):
    line = fails(2, "users", "add", "ana", input=PASSWORD + "\n")
    assert "a user named 'ana' already exists" in line


def test_passwd_role_and_remove(settings, admin):
    ok("users", "add", "bo", "--role", "editor", input=PASSWORD + "\n")
    ok("users", "passwd", "bo", input="new-password-42\n")
    assert check_login(settings, "bo", PASSWORD) is None
    assert check_login(settings, "bo", "new-password-42") is not None
    assert "bo is now viewer" in ok("users", "role", "bo", "viewer").stdout
    assert "unknown role" in fails(2, "users", "role", "bo", "owner")
    assert "'ana' is the last admin" in fails(2, "users", "role", "ana", "editor")
    assert "'ana' is the last admin" in fails(2, "users", "remove", "ana")
    ok("users", "remove", "bo")
    assert "no user named 'bo'" in fails(2, "users", "remove", "bo")
    assert [u["name"] for u in json.loads(ok("users", "list", "--json").stdout)] == ["ana"]


def test_a_token_is_printed_once_and_never_listed(settings, admin):
    result = ok("tokens", "create", "ci-export", "--user", "ana")
    token = result.stdout.strip()
    assert token.startswith("lf_")
    assert "will not be shown again" in result.stderr
    assert check_login(settings, "ana", PASSWORD) is not None
    with Store.open(settings) as store:
        assert store.user_for_token(token).name == "ana"
    listed = json.loads(ok("tokens", "list", "--json").stdout)
    assert listed == [
        {
            "id": 1,
            "user": "ana",
            "name": "ci-export",
            "prefix": token[3:11],
            "created": listed[0]["created"],
            "last_used": listed[0]["last_used"],
        }
    ]
    assert listed[0]["last_used"] is not None
    table = ok("tokens", "list").stdout
    assert token not in table
    assert token[3:11] in table
    assert token not in ok("tokens", "list", "--user", "ana", "--json").stdout
    assert json.loads(ok("users", "list", "--json").stdout)[0]["tokens"] == 1


def test_a_revoked_token_stops_working(settings, admin):
    token = ok("tokens", "create", "ci", "--user", "ana").stdout.strip()
    assert "revoked API token 1 (ci) of user ana" in ok("tokens", "revoke", "1").stdout
    with Store.open(settings) as store:
        assert store.user_for_token(token) is None
    assert json.loads(ok("tokens", "list", "--json").stdout) == []
    assert "no API token with id 1" in fails(2, "tokens", "revoke", "1")


def test_tokens_need_a_known_user(settings, admin):
    assert "no user named 'bo'" in fails(2, "tokens", "create", "ci", "--user", "bo")
    assert "no user named 'bo'" in fails(2, "tokens", "list", "--user", "bo")
    assert "a token name needs" in fails(2, "tokens", "create", " ", "--user", "ana")
