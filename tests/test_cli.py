"""The CLI in-process (typer's runner): flags become calls, errors one line and an exit code."""

from __future__ import annotations

import json

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from leadferry.cli import app
from leadferry.simulators import SIMULATORS
from tests.conftest import API_KEY

cli = CliRunner()


def invoke(*args, env=None, input=None):
    return cli.invoke(app, list(args), env=env, input=input, catch_exceptions=False)


def ok(*args, **kwargs):
    result = invoke(*args, **kwargs)
    assert result.exit_code == 0, result.output
    return result.output


def fails(code, *args, **kwargs):
    result = invoke(*args, **kwargs)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def wide(monkeypatch):
    """The commands' console as wide as a table of every column needs: no cell folds. (Its
    width is read from COLUMNS once, when it is first used.)"""
    from leadferry.cli import common

    monkeypatch.setattr(common.console.real(), "width", 3000)


@pytest.fixture
def account(migrated_settings):
    ok(
        "accounts",
        "add",
        "acme",
        "--connector",
        "leadexec",
        "--set",
        "base_url=http://127.0.0.1:9/",
        env={"LEADFERRY_API_KEY": API_KEY},
    )
    return "acme"


@pytest.mark.parametrize(
    ("flags", "start", "end"),
    [
        ([], "2026-11-22T00:00:00-08:00", "2026-11-23T00:00:00-08:00"),
        (["--date", "2026-11-01"], "2026-11-01T00:00:00-07:00", "2026-11-02T00:00:00-08:00"),
        (["--days-back", "7"], "2026-11-16T00:00:00-08:00", "2026-11-23T00:00:00-08:00"),
        (
            ["--from-days-back", "10", "--to-days-back", "5"],
            "2026-11-13T00:00:00-08:00",
            "2026-11-19T00:00:00-08:00",
        ),
    ],
)
def test_window_prints_the_specs_examples(flags, start, end):
    out = ok("window", *flags, "--tz", "America/Los_Angeles", "--today", "2026-11-23", "--json")
    assert json.loads(out) == {"start": start, "end": end, "timezone": "America/Los_Angeles"}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--days-back", "-2"], "--days-back: -2 is negative"),
        (["--date", "2026-02-31"], "--date: '2026-02-31' is not a date"),
        (["--from", "2026-11-10", "--to", "2026-11-01"], "after it ends"),
        (["--from-days-back", "3", "--to", "2026-11-01", "--to-days-back", "1"], "not both"),
        (["--date", "2027-01-01"], "starts in the future"),
        (["--tz", "Nowhere/Special"], "unknown time zone 'Nowhere/Special'"),
    ],
)
def test_bad_windows_exit_2_with_one_line(flags, message):
    line = fails(2, "window", "--today", "2026-11-23", *flags)
    assert message in line


def test_reports_are_generated_from_the_connector_declaration():
    described = json.loads(ok("reports", "--json"))
    leadexec = next(c for c in described if c["name"] == "leadexec")
    assert [f["id"] for f in leadexec["fields"]] == ["api_key", "base_url", "timezone"]
    assert leadexec["fields"][0]["secret"] is True
    assert leadexec["default_timezone"] == "America/Los_Angeles"
    (leads,) = leadexec["reports"]
    assert leads["slug"] == "leads"
    assert leads["params"] == [
        {
            "id": "lid",
            "label": "LID",
            "type": "int",
            "required": True,
            "help": "The lead type id (LID) of the leads you want.",
        }
    ]
    assert "lid (int, required)" in ok("reports")


def test_accounts_mask_secrets_and_count_datasets(account):
    listed = json.loads(ok("accounts", "list", "--json"))
    assert listed == [
        {
            "name": "acme",
            "connector": "leadexec",
            "config": {"base_url": "http://127.0.0.1:9/"},
            "secrets": {"api_key": "••••-key"},
            "secrets_readable": True,
            "datasets": 0,
        }
    ]
    ok(
        "datasets",
        "create",
        "acme_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=271",
    )
    assert json.loads(ok("accounts", "list", "--json"))[0]["datasets"] == 1
    assert API_KEY not in ok("accounts", "list")


def test_without_a_terminal_or_standard_input_the_secret_is_named(settings):
    line = fails(2, "accounts", "add", "acme", "--connector", "leadexec", input="")
    assert "LEADFERRY_API_KEY" in line
    assert "standard input" in line


def test_secrets_are_read_from_standard_input_when_it_is_not_a_terminal(settings, store):
    add = ("accounts", "add", "acme", "--connector", "leadexec")
    out = ok(*add, "--set", "base_url=http://127.0.0.1:9/", input=f"{API_KEY}\n")
    assert API_KEY not in out
    assert store.get_account("acme").secrets["api_key"].get_secret_value() == API_KEY
    ok("accounts", "rotate", "acme", input="new-key-0002\r\n")
    assert store.get_account("acme").secrets["api_key"].get_secret_value() == "new-key-0002"
    moved = ok("accounts", "edit", "acme", "--set", "base_url=http://127.0.0.1:10/", input="k3\n")
    assert "updated account acme" in moved
    assert store.get_account("acme").secrets["api_key"].get_secret_value() == "k3"


def test_unknown_fields_connectors_and_duplicates_are_named(account):
    assert "no field 'apikey'" in fails(
        2,
        "accounts",
        "add",
        "x",
        "--connector",
        "leadexec",
        "--set",
        "apikey=1",
        env={"LEADFERRY_API_KEY": "k"},
    )
    assert "unknown connector 'leadexe'" in fails(
        2, "accounts", "add", "x", "--connector", "leadexe"
    )
    assert "already exists" in fails(
        2, "accounts", "add", "acme", "--connector", "leadexec", env={"LEADFERRY_API_KEY": "k"}
    )
    assert "unknown time zone" in fails(
        2,
        "accounts",
        "add",
        "y",
        "--connector",
        "leadexec",
        "--set",
        "timezone=Mars/Base",
        env={"LEADFERRY_API_KEY": "k"},
    )


def test_rotate_rename_and_remove(account, store):
    ok("accounts", "rotate", "acme", env={"LEADFERRY_API_KEY": "new-key-0001"})
    assert store.get_account("acme").secrets["api_key"].get_secret_value() == "new-key-0001"
    ok(
        "datasets",
        "create",
        "acme_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=1",
    )
    assert "acme_leads" in fails(2, "accounts", "remove", "acme")
    ok("accounts", "rename", "acme", "acme2")
    assert store.get_dataset("acme_leads").account == "acme2"
    ok("datasets", "remove", "acme_leads")
    ok("accounts", "remove", "acme2")
    assert json.loads(ok("accounts", "list", "--json")) == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--report", "calls", "--param", "lid=1"], "has no report 'calls'"),
        (["--report", "leads"], "needs parameter lid (LID)"),
        (["--report", "leads", "--param", "lid=abc"], "parameter lid: expected an integer"),
        (["--report", "leads", "--param", "lid=1", "--param", "x=2"], "no parameter 'x'"),
        (["--report", "leads", "--param", "lid"], "--param 'lid': expected NAME=VALUE"),
        (["--report", "leads", "--param", "lid=1", "--days-back", "-1"], "is negative"),
        (["--report", "leads", "--param", "lid=1", "--tz", "Moon/Base"], "unknown time zone"),
        (["--report", "leads", "--param", "lid=1", "--update", "upsert"], "unknown update method"),
        (["--report", "leads", "--param", "lid=1", "--merge-key", "uid"], "only applies to"),
    ],
)
def test_bad_datasets_are_refused_with_the_reason(account, flags, message):
    line = fails(2, "datasets", "create", "acme_leads", "--account", "acme", *flags)
    assert message in line
    assert json.loads(ok("datasets", "list", "--json")) == []


def test_unknown_account_and_bad_names(account):
    assert "no account named 'nobody'" in fails(
        2,
        "datasets",
        "create",
        "x_leads",
        "--account",
        "nobody",
        "--report",
        "leads",
        "--param",
        "lid=1",
    )
    assert (
        "dataset name"
        in fails(
            2,
            "datasets",
            "create",
            "Bad-Name",
            "--account",
            "acme",
            "--report",
            "leads",
            "--param",
            "lid=1",
        ).lower()
    )


def test_create_show_and_edit_a_dataset(account):
    ok(
        "datasets",
        "create",
        "acme_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=271",
        "--from-days-back",
        "10",
        "--to-days-back",
        "5",
        "--update",
        "merge",
        "--merge-key",
        "uid",
        "--description",
        "the big one",
    )
    shown = json.loads(ok("datasets", "show", "acme_leads", "--json"))
    assert shown["params"] == {"lid": 271}
    assert shown["date_selection"] == {"from_days_back": 10, "to_days_back": 5}
    assert shown["dates"] == "10 days back to 5 days back"
    assert shown["update_method"] == "merge"
    assert shown["merge_key"] == "uid"
    assert shown["effective_timezone"] == "America/Los_Angeles"
    assert set(shown["next_window"]) == {"start", "end", "timezone"}
    ok(
        "datasets",
        "edit",
        "acme_leads",
        "--date",
        "2026-11-01",
        "--update",
        "partition",
        "--tz",
        "UTC",
    )
    shown = json.loads(ok("datasets", "show", "acme_leads", "--json"))
    assert shown["date_selection"] == {"date": "2026-11-01"}
    assert shown["update_method"] == "partition"
    assert shown["merge_key"] is None
    assert shown["next_window"]["start"] == "2026-11-01T00:00:00+00:00"
    ok("datasets", "edit", "acme_leads", "--default-dates")
    assert json.loads(ok("datasets", "show", "acme_leads", "--json"))["dates"] == "yesterday"
    assert "needs parameter" not in ok("datasets", "list")


def test_history_of_a_dataset_that_never_ran_is_empty(account):
    ok(
        "datasets",
        "create",
        "acme_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=1",
    )
    assert json.loads(ok("history", "acme_leads", "--json")) == []
    assert "no dataset named 'other'" in fails(2, "history", "other")


@pytest.mark.parametrize("args", [[], ["acme_leads", "--all"]])
def test_run_takes_names_or_all(settings, args):
    line = fails(2, "run", *args)
    assert line == "error: name the datasets to run, or give --all (not both)"


def test_run_all_with_no_datasets_says_so(migrated_settings):
    result = invoke("run", "--all")
    assert result.exit_code == 0
    assert result.stderr.strip() == ("no datasets yet: `leadferry datasets create --help` says how")


def test_query_before_any_run_says_there_is_no_warehouse(settings):
    assert "no warehouse yet" in fails(2, "query", "select 1")


def command_paths(group=None, path=()):
    """Every command of the app as the words that call it, walked from the typer app itself."""
    group = group or typer.main.get_command(app)
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        if isinstance(command, TyperGroup):
            yield from command_paths(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_has_help():
    paths = list(command_paths())
    assert {("serve",), ("backfill",), ("users", "add"), ("tokens", "create")} <= set(paths)
    for path in paths:
        assert "usage" in ok(*path, "--help").lower(), path  # simulate writes its own usage
    for simulator in SIMULATORS:
        assert "Usage" in ok("simulate", simulator, "--help"), simulator


@pytest.mark.parametrize(
    ("args", "long_lived"),
    [
        (["serve"], True),
        (["-v", "--debug", "worker", "--processes", "2"], True),
        (["simulate", "leadexec", "--port", "8000"], True),
        (["run", "serve"], False),  # a dataset named serve
        (["-vv", "history", "x", "--json"], False),
        (["--help"], False),
        (["no-such-command"], False),
    ],
)
def test_only_commands_that_run_until_stopped_keep_python_s_own_exit(args, long_lived):
    from leadferry.cli.root import is_long_lived

    assert is_long_lived(args) is long_lived


def test_the_help_lists_each_command_by_its_own_first_line():
    """`leadferry --help` prints COMMANDS' summaries without loading the commands: each must be
    what the command itself says."""
    from leadferry.cli.root import COMMANDS, load_command

    listed = ok("--help")
    for name, entry in COMMANDS.items():
        own = " ".join((load_command(name).help or "").split("\n\n")[0].split())
        assert entry.summary == own, name
        assert name in listed


def test_a_display_name_is_set_shown_and_cleared(account, wide):
    ok("datasets", "create", "acme_leads", "--account", account, "--report", "leads",
       "--param", "lid=1", "--display-name", " Spring leads ")  # fmt: skip
    shown = json.loads(ok("datasets", "show", "acme_leads", "--json"))
    assert shown["display_name"] == "Spring leads"
    assert "display_name: Spring leads" in ok("datasets", "show", "acme_leads")
    assert "Spring leads" in ok("datasets", "list")
    ok("datasets", "edit", "acme_leads", "--display-name", "")
    assert json.loads(ok("datasets", "list", "--json"))[0]["display_name"] == "acme_leads"


def test_accounts_lookup_lists_a_salesexec_accounts_lead_types(settings, wide):
    from tests.conftest import SALES_PASSWORD, SALES_USER, salesexec_app, serve_on_loopback

    _, simulator = salesexec_app()
    with serve_on_loopback(simulator) as url:
        ok("accounts", "add", "sales", "--connector", "salesexec",
           "--set", f"username={SALES_USER}", "--set", f"base_url={url}",
           env={"LEADFERRY_PASSWORD": SALES_PASSWORD})  # fmt: skip
        listed = json.loads(ok("accounts", "lookup", "sales", "lead_type_uid", "--json"))
        table = ok("accounts", "lookup", "sales", "lead_type_uid")
    assert listed
    assert all(set(choice) == {"value", "label"} for choice in listed)
    for choice in listed:
        assert choice["value"] in table
        assert choice["label"] in table
    assert SALES_PASSWORD not in table


def test_accounts_lookup_of_a_parameter_without_a_list_is_one_line(account):
    line = fails(2, "accounts", "lookup", account, "lid")
    assert "LeadExec lists no values for parameter 'lid'" in line
