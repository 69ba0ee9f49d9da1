"""Entry points: how leadferry finds connectors and simulators, its own and other packages'."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points


def declared(group: str) -> list[EntryPoint]:
    """The entry points of *group*: leadferry's own, then other packages', each by name.

    Of two entry points with one name, leadferry's own wins: a package cannot replace a
    built-in connector by declaring one of the same name.
    """

    def plugin_then_name(point: EntryPoint) -> tuple[bool, str]:
        return (not point.value.startswith("leadferry."), point.name)

    points: dict[str, EntryPoint] = {}
    for point in sorted(entry_points(group=group), key=plugin_then_name):
        points.setdefault(point.name, point)
    return list(points.values())
