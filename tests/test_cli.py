"""The CLI in-process (typer's runner): flags become calls, errors one line and an exit code."""

from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from leadferry.cli import app
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
    width is read from COLUMNS once, when the module is imported.)"""
    from leadferry.cli import common

    monkeypatch.setattr(common.console, "width", 3000)


@pytest.fixture
def account(settings):
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


def test_query_before_any_run_says_there_is_no_warehouse(settings):
    assert "no warehouse yet" in fails(2, "query", "select 1")


def test_every_command_has_help():
    for group, commands in {
        (): ["run", "history", "preview", "query", "export", "window", "reports", "simulate"],
        ("accounts",): ["add", "list", "test", "rotate", "edit", "rename", "remove"],
        ("datasets",): ["create", "list", "show", "edit", "remove"],
    }.items():
        for command in commands:
            out = (
                ok(*group, command, "--help")
                if command != "simulate"
                else ok("simulate", "leadexec", "--help")
            )
            assert "Usage" in out


def test_version_is_printed():
    from leadferry import __version__

    assert ok("--version").strip() == f"leadferry {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("datasets", "create", "--help"),
        ("datasets", "schedule", "--help"),
        ("accounts", "add", "--help"),
        ("serve", "--help"),
        ("simulate", "leadexec", "--help"),
        ("simulate", "avidtrak", "--help"),
    ],
)
def test_help_labels_values_in_words_not_python_types(args):
    out = ok(*args, env={"COLUMNS": "200"})
    for noise in ("<bool>", "<int>", "<str>", "<float>", "list[", "{name}", "{"):
        assert noise not in out, out
    assert "shared/specs" not in out


def test_help_names_arguments_and_values_plainly():
    out = ok("datasets", "create", "--help", env={"COLUMNS": "200"})
    assert "Usage: leadferry datasets create [OPTIONS] NAME" in out
    assert re.search(r"--days-back\s+N\s", out)
    assert re.search(r"--account\s+-a\s+TEXT\s", out)
    assert re.search(r"--incremental\s+--no-incremental\s+Load only", out)


def create_leads(*flags):
    ok("datasets", "create", "acme_leads", "--account", "acme", "--report", "leads",
       "--param", "lid=271", *flags)  # fmt: skip


def test_show_prints_settings_as_words_not_python(account, wide):
    create_leads("--days-back", "7")
    out = ok("datasets", "show", "acme_leads", env={"COLUMNS": "200"})
    assert "params: lid=271" in out
    assert "owner: -" in out
    for python in ("{'", "None", "True", "False", "[]"):
        assert python not in out, out


def test_undated_reports_are_not_described_as_yesterday(settings, wide):
    ok("accounts", "add", "sales", "--connector", "salesexec", "--set", "username=u",
       "--set", "base_url=http://127.0.0.1:9", input="pw\n")  # fmt: skip
    created = ok("datasets", "create", "waiting", "--account", "sales",
                 "--report", "leads_awaiting_import_count", "--update", "append")  # fmt: skip
    assert "yesterday" not in created
    assert "no dates" in created
    assert json.loads(ok("datasets", "show", "waiting", "--json"))["dates"].startswith("no dates")
    assert "yesterday" not in ok("datasets", "list", env={"COLUMNS": "200"})


def test_schedule_changes_only_the_flags_given(account):
    create_leads()
    ok("datasets", "schedule", "acme_leads", "--daily", "06:00", "--tz", "America/Chicago")
    ok("datasets", "schedule", "acme_leads", "--retries", "3", "--retry-every", "10")
    shown = json.loads(ok("datasets", "show", "acme_leads", "--json"))
    assert shown["schedule"] == "daily at 06:00 America/Chicago"
    assert shown["retry"] == {"every_minutes": 10, "retries": 3}
    line = fails(2, "datasets", "schedule", "acme_leads", "--tz", "UTC")
    assert "give it too" in line


def test_edit_refuses_secrets_and_points_at_rotate(account, store):
    line = fails(2, "accounts", "edit", "acme", "--set", "api_key=stolen")
    assert "leadferry accounts rotate acme" in line
    assert "stolen" not in line
    assert store.get_account("acme").secrets["api_key"].get_secret_value() == API_KEY


def test_merge_keys_are_checked_against_the_reports_columns(settings):
    ok("accounts", "add", "calls", "--connector", "avidtrak",
       "--set", "base_url=http://127.0.0.1:9/calls", input="pin\n")  # fmt: skip
    create = ("datasets", "create", "offline", "--account", "calls", "--report",
              "offline_portal_calls", "--update", "merge")  # fmt: skip
    line = fails(2, *create, "--merge-key", "nope")
    assert "--merge-key nope: not a column of report offline_portal_calls" in line
    ok(*create, "--merge-key", "call_id")
    assert "not a column" in fails(2, "datasets", "edit", "offline", "--merge-key", "call_id,x")
    assert json.loads(ok("datasets", "show", "offline", "--json"))["merge_key"] == "call_id"


def test_a_dataset_that_never_ran_says_so(account, tmp_path):
    create_leads()
    assert "acme_leads has not run yet" in ok("history", "acme_leads")
    assert "acme_leads has not run yet" in ok("preview", "acme_leads")
    assert json.loads(ok("preview", "acme_leads", "--json")) == []
    line = fails(2, "export", "acme_leads", "--format", "csv", "-o", str(tmp_path / "x.csv"))
    assert "has not run yet" in line


def test_update_methods_are_taken_in_any_case(account):
    create_leads("--update", "Replace")
    assert json.loads(ok("datasets", "show", "acme_leads", "--json"))["update_method"] == "replace"
    ok("datasets", "edit", "acme_leads", "--update", "PARTITION")
    assert json.loads(ok("datasets", "list", "--json"))[0]["update_method"] == "partition"


def test_days_back_is_bounded(account):
    line = fails(2, "window", "--days-back", "100000")
    assert "use at most 36,600" in line


def test_the_next_window_is_the_one_of_the_next_runs_day(account, store):
    import datetime as dt

    from leadferry.cli.common import now

    create_leads("--days-back", "5")
    ok("datasets", "schedule", "acme_leads", "--daily", "06:00", "--tz", "America/Los_Angeles")
    later = now() + dt.timedelta(days=3)
    store.set_state("acme_leads", next_run_at=later)
    shown = json.loads(ok("datasets", "show", "acme_leads", "--json"))
    run_day = later.astimezone(ZoneInfo("America/Los_Angeles")).date()
    assert shown["next_window"]["start"].startswith(str(run_day - dt.timedelta(days=5)))
    assert shown["next_window"]["end"].startswith(str(run_day))
    assert shown["paused"] is False


def test_a_paused_dataset_shows_no_next_run(account, store):
    create_leads("--days-back", "5")
    ok("datasets", "schedule", "acme_leads", "--daily", "06:00", "--when-failing", "pause")
    store.set_state("acme_leads", failing=True)
    shown = json.loads(ok("datasets", "show", "acme_leads", "--json"))
    assert shown["paused"] is True
    assert shown["next_run"] is None
    assert "next_window" not in shown
    assert "paused" in ok("datasets", "show", "acme_leads")


def test_times_are_on_the_datasets_clock_with_its_zone(account, store, wide):
    import datetime as dt

    create_leads()
    ok("datasets", "schedule", "acme_leads", "--daily", "06:00", "--tz", "America/Los_Angeles")
    store.set_state("acme_leads", next_run_at=dt.datetime(2026, 12, 3, 14, 0, tzinfo=dt.UTC))
    shown = ok("datasets", "show", "acme_leads", env={"COLUMNS": "200"})
    assert "next_run: 2026-12-03 06:00:00 PST" in shown
    assert "next_window: 2026-12-02 (1 day)" in shown
    shown_json = json.loads(ok("datasets", "show", "acme_leads", "--json"))
    assert shown_json["next_run"] == "2026-12-03T06:00:00-08:00"
    scheduled = ok("datasets", "schedule", "acme_leads", "--retries", "1", "--retry-every", "5",
                   "--now", "2026-11-23T20:00:00+00:00")  # fmt: skip
    assert "2026-11-24 06:00:00 PST" in scheduled
    assert "+00:00" not in scheduled


def test_a_runs_times_are_on_the_datasets_clock_in_list_history_and_preview(settings, wide):
    from tests.conftest import leadexec_app, serve_on_loopback

    with serve_on_loopback(leadexec_app()[1]) as url:
        ok("accounts", "add", "acme", "--connector", "leadexec", "--set", f"base_url={url}/",
           input=f"{API_KEY}\n")  # fmt: skip
        create_leads("--from", "2026-11-16", "--to", "2026-11-17")
        ok("run", "acme_leads")
    wide = {"COLUMNS": "250"}
    for out in (
        ok("datasets", "list", env=wide),
        ok("history", "acme_leads", env=wide),
        ok("preview", "acme_leads", "--limit", "2", env={"COLUMNS": "3000"}),
    ):
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d PST", out), out
        assert "+00:00" not in out
    assert "rows loaded" in ok("history", "acme_leads", env=wide)
    listed = json.loads(ok("datasets", "list", "--json"))[0]["last_run"]
    assert listed["started_at"].endswith("-08:00")
