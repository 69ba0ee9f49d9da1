"""The connector registry: every vendor leadferry can read, by name."""

from __future__ import annotations

from leadferry.connectors.avidtrak import AvidTrakConnector
from leadferry.connectors.base import Connector
from leadferry.connectors.leadexec import LeadExecConnector
from leadferry.connectors.salesexec import SalesExecConnector
from leadferry.errors import NotFoundError

CONNECTORS: dict[str, type[Connector]] = {
    connector.name: connector
    for connector in (LeadExecConnector, SalesExecConnector, AvidTrakConnector)
}


def get_connector(name: str) -> type[Connector]:
    """The connector class called *name*; NotFoundError lists the known ones."""
    try:
        return CONNECTORS[name]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise NotFoundError(f"unknown connector {name!r} (known: {known})") from None
