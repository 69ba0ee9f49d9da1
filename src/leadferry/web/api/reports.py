"""``/connectors``: what each vendor asks of an account and which reports it offers.

Generated from the connector declarations, like the CLI's flags and the web forms.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from leadferry.connectors import CONNECTORS, get_connector
from leadferry.connectors.base import Connector, Report
from leadferry.web.api.models import (
    ConnectorPublic,
    ConnectorsPublic,
    CredentialFieldPublic,
    ParamPublic,
    ReportPublic,
    ReportsPublic,
    TablePublic,
    problems,
)
from leadferry.web.api.routing import ApiRoute
from leadferry.web.deps import ViewerDep

router = APIRouter(tags=["connectors"], route_class=ApiRoute)

ConnectorName = Annotated[
    str, Path(max_length=64, description="A connector's name: leadexec, salesexec, avidtrak...")
]


def report_public(report: Report) -> ReportPublic:
    return ReportPublic(
        slug=report.slug,
        label=report.label,
        description=report.description,
        dated=report.dated,
        params=[
            ParamPublic(
                id=p.id,
                label=p.label,
                type="integer" if p.type is int else "string",
                required=p.required,
                help=p.help,
                lookup=p.lookup is not None,
            )
            for p in report.params
        ],
        tables=[
            TablePublic(name=t.name, primary_key=list(t.primary_key), parent_key=t.parent_key)
            for t in report.tables
        ],
        merge_key=list(report.merge_key),
        incremental=report.cursor_column is not None,
        partitioned=report.day_column is not None,
    )


def connector_public(connector: type[Connector]) -> ConnectorPublic:
    return ConnectorPublic(
        name=connector.name,
        label=connector.label,
        fields=[
            CredentialFieldPublic(
                id=f.id,
                label=f.label,
                secret=f.secret,
                required=f.required,
                default=f.default,
                advanced=f.advanced,
                help=f.help,
            )
            for f in connector.fields
        ],
        reports=[report_public(r) for r in connector.reports],
    )


@router.get("/connectors")
def list_connectors(_user: ViewerDep) -> ConnectorsPublic:
    """Every connector: its credential fields and its reports."""
    found = [connector_public(c) for c in CONNECTORS.values()]
    return ConnectorsPublic(data=found, count=len(found))


@router.get("/connectors/{connector}", responses=problems(404))
def show_connector(connector: ConnectorName, _user: ViewerDep) -> ConnectorPublic:
    """One connector: its credential fields and its reports."""
    return connector_public(get_connector(connector))


@router.get("/connectors/{connector}/reports", responses=problems(404))
def list_reports(connector: ConnectorName, _user: ViewerDep) -> ReportsPublic:
    """The reports of a connector: parameters, tables, merge key, what they allow."""
    found = [report_public(r) for r in get_connector(connector).reports]
    return ReportsPublic(data=found, count=len(found))


@router.get("/connectors/{connector}/reports/{report}", responses=problems(404))
def show_report(
    connector: ConnectorName,
    report: Annotated[str, Path(max_length=64)],
    _user: ViewerDep,
) -> ReportPublic:
    """One report of a connector."""
    return report_public(get_connector(connector).report(report))
