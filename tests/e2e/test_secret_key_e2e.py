"""A replaced, lost or changed secret key, through real `leadferry` processes: everything that
needs no secret keeps working, and the way back is one command away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadferry.store import generate_key
from tests.e2e.conftest import E2E_KEY, Leadferry, add_account

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def key_file_home(tmp_path_factory, leadexec_server) -> Leadferry:
    """An account and a dataset that ran, their key in the home's key file (the default), not
    in LEADFERRY_SECRET_KEY."""
    leadferry = Leadferry(tmp_path_factory.mktemp("key-file") / "home")
    del leadferry.env["LEADFERRY_SECRET_KEY"]
    set_up(leadferry, leadexec_server.url)
    return leadferry


@pytest.fixture
def with_key_file(key_file_home, tmp_path) -> Leadferry:
    """A copy of ``key_file_home``, this test's to change."""
    return key_file_home.copy(tmp_path / "home")


def key_file(leadferry) -> Path:
    return leadferry.home / "secret.key"


def rotate_then_run(leadferry) -> None:
    leadferry.ok("accounts", "rotate", "acme", env={"LEADFERRY_API_KEY": E2E_KEY})
    assert "accepted" in leadferry.ok("accounts", "test", "acme")
    leadferry.ok("run", "acme_leads")


def one_line(result) -> str:
    (line,) = result.stderr.splitlines()
    return line


def set_up(leadferry, url: str) -> None:
    add_account(leadferry, url)
    leadferry.ok("datasets", "create", "acme_leads", "--account", "acme", "--report", "leads",
                 "--param", "lid=271", "--days-back", "1")  # fmt: skip
    leadferry.ok("run", "acme_leads")


def nothing_secret_is_refused(leadferry) -> None:
    """Lists, history, status and queries need no secret: they all still work."""
    assert "acme_leads" in leadferry.ok("datasets", "list")
    assert "acme_leads" in leadferry.ok("datasets", "show", "acme_leads")
    assert json.loads(leadferry.ok("history", "acme_leads", "--json"))
    leadferry.ok("query", "select count(*) from acme_leads.leads")
    (account,) = json.loads(leadferry.ok("accounts", "list", "--json"))
    assert account["secrets_readable"] is False
    assert account["secrets"] == {}
    assert "unreadable: rotate them" in leadferry.ok("accounts", "list")


def test_a_replaced_key_leaves_the_rest_working_and_rotate_recovers(with_key_file):
    leadferry = with_key_file
    key_file(leadferry).write_text(generate_key() + "\n")

    nothing_secret_is_refused(leadferry)
    ran = leadferry("run", "acme_leads")
    assert ran.returncode == 2
    assert one_line(ran) == (
        f"error: the secrets of account 'acme' cannot be read with the key file "
        f"{leadferry.home / 'secret.key'} (another key encrypted them): restore that key, or "
        "re-enter them with `leadferry accounts rotate acme`"
    )
    rotate_then_run(leadferry)


def test_a_missing_key_file_is_refused_until_restored(with_key_file):
    leadferry = with_key_file
    backup = key_file(leadferry).read_text()
    key_file(leadferry).unlink()

    nothing_secret_is_refused(leadferry)
    added = leadferry("accounts", "add", "other", "--connector", "leadexec",
                      env={"LEADFERRY_API_KEY": E2E_KEY})  # fmt: skip
    assert added.returncode == 2
    assert one_line(added).startswith(
        f"error: the key file {key_file(leadferry)} is missing, yet 1 account has secrets "
        "encrypted with "
        "it: restore it from your backup"
    )
    assert leadferry("run", "acme_leads").returncode == 2
    assert not key_file(leadferry).exists()  # never silently replaced

    key_file(leadferry).write_text(backup)
    leadferry.ok("run", "acme_leads")


def test_a_lost_key_is_replaced_by_rekey_then_secrets_re_entered(with_key_file):
    leadferry = with_key_file
    key_file(leadferry).unlink()

    refused = leadferry("secrets", "rekey")
    assert refused.returncode == 2
    assert "--forget-unreadable" in one_line(refused)
    out = leadferry.ok("secrets", "rekey", "--forget-unreadable")
    assert "forgot the unreadable secrets of acme: `leadferry accounts rotate acme`" in out
    assert key_file(leadferry).exists()
    rotate_then_run(leadferry)


def test_rekey_re_encrypts_under_a_new_key_file(with_key_file):
    leadferry = with_key_file
    old = key_file(leadferry).read_text()
    out = leadferry.ok("secrets", "rekey")
    assert "re-encrypted the secrets of 1 account(s) under a new key" in out
    assert "back it up" in out
    assert key_file(leadferry).read_text() != old
    assert "accepted" in leadferry.ok("accounts", "test", "acme")
    key_file(leadferry).write_text(old)  # the old key no longer opens them
    assert leadferry("accounts", "test", "acme").returncode == 2


def test_rekey_with_the_key_in_the_environment(leadferry, leadexec_server):
    add_account(leadferry, leadexec_server.url)  # what rekey re-encrypts: no dataset needed
    refused = leadferry("secrets", "rekey")
    assert refused.returncode == 2
    assert "LEADFERRY_NEW_SECRET_KEY" in one_line(refused)
    new = leadferry.ok("secrets", "new-key").strip()
    out = leadferry.ok("secrets", "rekey", env={"LEADFERRY_NEW_SECRET_KEY": new})
    assert "now set LEADFERRY_SECRET_KEY to the value of LEADFERRY_NEW_SECRET_KEY" in out
    assert leadferry("accounts", "test", "acme").returncode == 2  # the old key: unreadable
    leadferry.env["LEADFERRY_SECRET_KEY"] = new
    assert "accepted" in leadferry.ok("accounts", "test", "acme")
