"""`make demo` and `make demo-ui` as a user meets them: real processes, real output.

What the demo prints is what it ran (it runs each printed line through bash); these tests check
that the lines stay whole in a narrow terminal, that the lines it prints at the end work pasted
into a shell at the top of the clone, and that demo-ui serves the web UI with the printed login.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]


def demo_env(home: Path) -> dict[str, str]:
    # A narrow terminal: a command that wrapped would show as a cut line.
    return os.environ | {"LEADFERRY_DEMO_HOME": str(home), "COLUMNS": "60"}


def commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("$ ")]


def test_the_demos_printed_commands_are_whole_and_work_pasted(tmp_path):
    home = tmp_path / "demo"
    done = subprocess.run(DEMO, env=demo_env(home), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    printed = commands(done.stdout)
    created = [c for c in printed if c.startswith("leadferry datasets create ")]
    assert created
    assert all(re.search(r"--update \w+$", c) for c in created), created
    assert any(c.startswith("echo ") and " | leadferry accounts add " in c for c in printed)
    assert "make demo-ui" in done.stdout
    tail = printed[printed.index("source .venv/bin/activate", 2) :]
    assert tail[1] == f"export LEADFERRY_HOME={home.resolve()}"
    pasted = subprocess.run(
        ["bash", "-e", "-c", "\n".join(tail)], cwd=ROOT, capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if k != "LEADFERRY_HOME"} | {"COLUMNS": "200"},
    )  # fmt: skip
    assert pasted.returncode == 0, pasted.stderr
    assert "success" in pasted.stdout
    assert "rows loaded" in pasted.stdout


def test_demo_ui_serves_the_demo_with_the_printed_login_until_ctrl_c(tmp_path):
    demo = subprocess.Popen(
        [*DEMO, "--serve"],
        env=demo_env(tmp_path / "demo"),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a demo that hangs can be stopped with its children
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+/) \(user demo, password (\w+)\)", line)
            if found:
                break
        else:
            pytest.fail("demo-ui printed no address and password")
        base, password = found.groups()
        deadline = time.monotonic() + 120
        with httpx2.Client(base_url=base, timeout=30) as web:
            while True:
                try:
                    page = web.get("/login")
                    break
                except httpx2.TransportError:
                    assert time.monotonic() < deadline, "serve did not answer"
                    time.sleep(0.5)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            form = {"username": "demo", "password": password, "csrf_token": token}
            assert web.post("/login", data=form).status_code in (200, 303)
            center = web.get("/").text
            assert "leadexec_leads" in center
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            stopped = demo.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
            raise
        finally:
            demo.stdout.close()
    assert stopped == 0
