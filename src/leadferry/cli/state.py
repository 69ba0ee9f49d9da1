"""What the root command's global options set for the command that runs (``--debug``).

Its own module, so that the root command reads and sets it without loading what the commands
share (:mod:`leadferry.cli.common`: settings, pydantic, rich's tables).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _State:
    debug: bool = False


state = _State()
