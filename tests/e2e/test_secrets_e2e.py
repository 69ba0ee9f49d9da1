"""No secret in any spelling anywhere: vendors that quote the request back or redirect elsewhere,
driven through real `leadferry` processes (the CLI and `serve`), then every output and every
file under $LEADFERRY_HOME searched for every spelling of the key."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx2
import pytest

from tests.e2e.conftest import E2E_PASSWORD, add_account, add_user, free_port
from tests.fake_vendors import (
    CANARY,
    echoing_vendor,
    moving_vendor,
    redirecting_vendor,
    spellings,
)

pytestmark = pytest.mark.e2e


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [spelled for spelled in spellings(CANARY) if spelled.encode() in data]


def files_with_the_key(home: Path) -> dict[str, list[str]]:
    found = {}
    for path in home.rglob("*"):
        if path.is_file() and (spelled := leaks(path.read_bytes())):
            found[str(path.relative_to(home))] = spelled
    return found


def create_dataset(leadferry, name: str) -> None:
    leadferry.ok("datasets", "create", name, "--account", "acme", "--report", "leads",
                 "--param", "lid=271")  # fmt: skip


def test_a_vendor_quoting_the_key_back_never_gets_it_shown_or_stored(leadferry):
    outputs = []
    with echoing_vendor() as vendor:
        add_account(leadferry, vendor, key=CANARY)
        create_dataset(leadferry, "echo_leads")

        tested = leadferry("accounts", "test", "acme")
        assert tested.returncode == 1
        assert "answered HTTP 400: Bad request GET" in tested.stderr
        assert "key=****" in tested.stderr
        ran = leadferry("-vv", "run", "echo_leads")
        assert ran.returncode == 1
        assert "DEBUG" in ran.stderr  # the log as well as the error line
        outputs += [tested.stdout, tested.stderr, ran.stdout, ran.stderr]

    (run,) = json.loads(leadferry.ok("history", "echo_leads", "--json"))
    assert run["status"] == "failed"
    assert "key=****" in run["error"]
    assert "\n" not in run["error"]
    outputs += [
        json.dumps(run),
        leadferry.ok("history", "echo_leads"),
        leadferry.ok("datasets", "show", "echo_leads"),
        leadferry.ok("datasets", "list", "--json"),
    ]
    assert not [leaks(output) for output in outputs if leaks(output)]
    assert not files_with_the_key(leadferry.home)
    assert not (leadferry.home / "pipelines" / "echo_leads" / "trace.pickle").exists()


def test_serve_keeps_the_key_out_of_pages_api_answers_and_its_log(leadferry):
    """Test connection, Load Preview, Run Now and the dataset's status over `leadferry serve`,
    as an editor's API token and a viewer's browser see them; then `serve`'s own log."""
    add_user(leadferry, "ada", "admin")
    add_user(leadferry, "vera", "viewer")
    token = leadferry.ok("tokens", "create", "e2e", "--user", "ada").strip()
    answers = []
    with echoing_vendor() as vendor:
        add_account(leadferry, vendor, key=CANARY)
        create_dataset(leadferry, "echo_leads")
        port = free_port()
        process = leadferry.start("-vv", "serve", "--port", str(port), "--tick", "0.5")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, process)
            with httpx2.Client(
                base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as api:
                tested = api.post("/accounts/acme/test").json()
                assert tested["ok"] is False
                assert "key=****" in tested["error"]
                preview = api.post("/preview", json={"account": "acme", "report": "leads",
                                                     "params": {"lid": 271}})  # fmt: skip
                assert preview.status_code == 502
                assert "key=****" in preview.json()["detail"]
                assert api.post("/datasets/echo_leads/runs").status_code == 202
                runs = wait_for_failure(api, "echo_leads")
                assert "key=****" in runs["data"][0]["error"]
                answers += [tested, preview.text, runs, api.get("/datasets/echo_leads").text,
                            api.get("/datasets").text]  # fmt: skip
            with httpx2.Client(base_url=base, timeout=30, follow_redirects=True) as browser:
                login_page = browser.get("/login")
                csrf = login_page.cookies.get("leadferry_login_csrf") or browser.cookies.get(
                    "leadferry_login_csrf"
                )
                logged_in = browser.post("/login", data={"username": "vera",
                                         "password": E2E_PASSWORD, "csrf_token": csrf})  # fmt: skip
                assert logged_in.status_code == 200, logged_in.text
                page = browser.get("/datasets/echo_leads")
                assert "key=****" in page.text
                answers += [page.text, browser.get("/").text]
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "echo_leads" in err  # the log does tell of the run
    assert not [leaks(str(answer)) for answer in answers if leaks(str(answer))]
    assert not leaks(out + err)
    assert not files_with_the_key(leadferry.home)


def wait_until_up(base: str, process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read())
        try:
            if httpx2.get(f"{base}/login", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not answer on {base}")


def wait_for_failure(api: httpx2.Client, name: str) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = api.get(f"/datasets/{name}/runs").raise_for_status().json()
        if runs["data"] and runs["data"][0]["status"] == "failed":
            return runs
        time.sleep(0.3)
    raise AssertionError(f"{name} did not fail")


def test_a_redirect_to_another_host_is_refused_and_the_key_never_goes_there(leadferry):
    with redirecting_vendor() as (vendor, elsewhere):
        add_account(leadferry, vendor, key=CANARY)
        create_dataset(leadferry, "moved_leads")
        tested = leadferry("accounts", "test", "acme")
        ran = leadferry("run", "moved_leads")
    for result in (tested, ran):
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: 127.0.0.1 redirected GET http://127.0.0.1:")
        assert f"to {elsewhere.url}/: refused, so that the account's credentials" in line
        assert "set the account's base URL" in line
        assert not leaks(result.stdout + result.stderr)
    assert elsewhere.seen == []
    (run,) = json.loads(leadferry.ok("history", "moved_leads", "--json"))
    assert "refused" in run["error"]
    assert not files_with_the_key(leadferry.home)


def test_a_redirect_on_the_same_host_is_followed(leadferry):
    with moving_vendor() as (vendor, moved):
        add_account(leadferry, vendor, key=CANARY)
        assert "accepted" in leadferry.ok("accounts", "test", "acme")
    (request,) = moved.seen
    assert request.startswith(moved.url + "/?key=KEY-canary%2B%2F%3D123456&")
