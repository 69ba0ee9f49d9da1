"""docs/connectors.md's table of confirmed facts names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
ROW = re.compile(r"^\| ([LSA]\d+) \| .* \| (.*) \| (.*) \|$")
SECTION_FILES = {
    "L": "tests/connectors/test_spec_leadexec.py",
    "S": "tests/connectors/test_spec_salesexec_avidtrak.py",
    "A": "tests/connectors/test_spec_salesexec_avidtrak.py",
}


def test_every_fact_names_tests_that_exist():
    rows = [m for line in (ROOT / "docs/connectors.md").read_text().splitlines()
            if (m := ROW.match(line))]  # fmt: skip
    assert [m[1] for m in rows] == [
        *(f"L{n}" for n in range(1, 28)), *(f"S{n}" for n in range(1, 5)),
        *(f"A{n}" for n in range(1, 16)),
    ]  # fmt: skip
    for fact, tests, _ in (m.groups() for m in rows):
        named = re.findall(r"`(?:([\w.]+\.py)::)?(test_\w+)`", tests)
        assert named, fact
        for file, test in named:
            path = f"tests/connectors/{file}" if file else SECTION_FILES[fact[0]]
            assert f"def {test}(" in (ROOT / path).read_text(), (fact, path, test)
