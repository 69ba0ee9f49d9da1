"""The connector registry: every vendor leadferry can read, by name.

Connectors are found through the ``leadferry.connectors`` entry points of the installed
packages: leadferry's own three are declared in its pyproject.toml exactly as a separate
package declares a fourth (docs/connectors.md). The entry points are read on first use, so that
importing a connector module never waits for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING

from leadferry.errors import NotFoundError
from leadferry.plugins import declared

if TYPE_CHECKING:
    from leadferry.connectors.base import Connector

CONNECTOR_GROUP = "leadferry.connectors"
logger = logging.getLogger(__name__)


@cache
def _installed() -> dict[str, type[Connector]]:
    from leadferry.connectors.base import Connector

    found: dict[str, type[Connector]] = {}
    for point in declared(CONNECTOR_GROUP):
        try:
            connector = point.load()
        except Exception as exc:  # a broken plugin must not take leadferry down with it
            logger.warning("connector %s (%s) cannot be loaded: %s", point.name, point.value, exc)
            continue
        if not (isinstance(connector, type) and issubclass(connector, Connector)):
            logger.warning("connector %s (%s) is not a Connector class", point.name, point.value)
            continue
        found.setdefault(connector.name, connector)
    return found


class _Registry(Mapping[str, "type[Connector]"]):
    def __getitem__(self, name: str) -> type[Connector]:
        return _installed()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_installed())

    def __len__(self) -> int:
        return len(_installed())


CONNECTORS: Mapping[str, type[Connector]] = _Registry()
"""Name -> connector class, for every installed connector."""


def get_connector(name: str) -> type[Connector]:
    """The connector class called *name*; NotFoundError lists the known ones."""
    try:
        return CONNECTORS[name]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise NotFoundError(f"unknown connector {name!r} (known: {known})") from None
