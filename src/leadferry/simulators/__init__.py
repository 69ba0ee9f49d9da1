"""Simulators of the vendor APIs, one module per vendor, registered in :data:`SIMULATORS`.

Every simulator module has the same shape, so ``leadferry simulate NAME`` can be generated from it:

- ``Settings``: a pydantic model whose fields (each with a default and a description) are the
  options;
- ``create_app(settings, now=None) -> FastAPI``: the app, with ``now`` pinning its clock.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType


class _LazyModules(Mapping[str, ModuleType]):
    """Name -> simulator module, imported on first use so the CLI starts fast."""

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = paths

    def __getitem__(self, name: str) -> ModuleType:
        return importlib.import_module(self._paths[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


SIMULATORS: Mapping[str, ModuleType] = _LazyModules(
    {
        "leadexec": "leadferry.simulators.leadexec",
        "salesexec": "leadferry.simulators.salesexec",
        "avidtrak": "leadferry.simulators.avidtrak",
    }
)

__all__ = ["SIMULATORS"]
