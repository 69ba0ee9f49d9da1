"""Simulators of the vendor APIs, one module per vendor, found in :data:`SIMULATORS`.

Simulator modules are the ``leadferry.simulators`` entry points of the installed packages, named
like their connector (leadferry's own three are declared in its pyproject.toml, as a separate
package declares its own). Every module has the same shape, so ``leadferry simulate NAME`` can be
generated from it, and tests can point an account at it:

- ``Settings``: a pydantic model whose fields (each with a default and a description) are the
  options;
- ``create_app(settings, now=None) -> FastAPI``: the app, with ``now`` pinning its clock;
- ``account(settings, url) -> SimulatedAccount``: the fields of an account that reads the
  simulator served at *url* (no trailing slash), and the parameters its reports need.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint
from types import ModuleType
from typing import Any

from leadferry.plugins import declared

SIMULATOR_GROUP = "leadferry.simulators"


@dataclass(frozen=True)
class SimulatedAccount:
    """How an account reads a simulator: its field values (settings and secrets alike), and
    the parameters of the reports that need some."""

    fields: dict[str, str]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)


@cache
def _points() -> dict[str, EntryPoint]:
    return {point.name: point for point in declared(SIMULATOR_GROUP)}


class _LazyModules(Mapping[str, ModuleType]):
    """Name -> simulator module, imported on first use so the CLI starts fast."""

    def __getitem__(self, name: str) -> ModuleType:
        module: ModuleType = _points()[name].load()
        return module

    def __iter__(self) -> Iterator[str]:
        return iter(_points())

    def __len__(self) -> int:
        return len(_points())


SIMULATORS: Mapping[str, ModuleType] = _LazyModules()

__all__ = ["SIMULATORS", "SimulatedAccount"]
