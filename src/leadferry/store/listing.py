"""The Data Center's queries: every dataset in one light row, and what a page of them shows.

At thousands of datasets the list cannot load every dataset with its settings, nor read the
runs table: each dataset's row keeps the few columns its status, search, filters and sorting
need (its latest run's status, its last success, its main table's rows, kept by the
transactions that start and finish runs). One statement over that table judges, filters and
counts; another finds the page's rows alone (by the name index when sorted by name); the page
then loads its own datasets, their latest runs (by the id on their rows), their last five
runs (a short index range each) and the accounts. :meth:`list_page` does it all in one read:
a fixed number of queries whatever the size, none reading every run. Every statement is
built once (per shape of filters) with its values bound, and run as Core: a request spends
its time reading rows, not building and compiling SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, case, false, func, or_, select, true, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from leadferry.store.orm import AccountRow, DatasetRow, RunRow, UTCDateTime
from leadferry.store.queries import (
    DATASETS_WITH_LATEST_RUN,
    dataset_of,
    dataset_row,
    load_datasets,
    to_run,
)
from leadferry.store.records import (
    AccountLine,
    Dataset,
    ListedDataset,
    PageDetails,
    Run,
    StatusPage,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy import ColumnElement, Select, Subquery
    from sqlalchemy.orm import Session
    from sqlalchemy.sql.compiler import SQLCompiler


def _like(text: str) -> str:
    """A LIKE pattern matching *text* anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


class _CaseFolded(FunctionElement[Any]):
    """A text column as a search compares it with a lowered pattern: ``lower(column)``, except
    on SQLite, where LIKE already ignores the case of exactly the letters its ``lower()``
    folds (ASCII), so the column is compared as it is: the same matches without a call on
    every row, most of a search's time over thousands of datasets."""

    name = "case_folded"
    inherit_cache = True


@compiles(_CaseFolded)
def _lowered(element: _CaseFolded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(_CaseFolded, "sqlite")
def _as_is(element: _CaseFolded, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


BADGES = ("running", "failing", "failed", "stale", "never", "success")
"""Each status in the order it takes precedence: the rule of ``service.status.judge``."""
_SORT_COLUMNS = {
    "name": "name",
    "status": "precedence",
    "last_success": "last_success",
    "next_run": "next_run_at",
    "rows": "table_rows",
}
_LISTED_COLUMNS = (
    "name",
    "connector",
    "report",
    "last_status",
    "failing",
    "stale",
    "stale_after",
    "last_success",
)


_STALE_LIMITS = select(DatasetRow.stale_after).where(DatasetRow.stale_after > 0).distinct()
_TO_COUNT = (
    DatasetRow.last_success_at.is_not(None),
    DatasetRow.table_rows.is_(None),
    DatasetRow.last_run_status != "running",
)
"""The datasets whose main table's rows the store lacks (see ``datasets_to_count``)."""


def _status_lines(limits: tuple[int, ...]) -> Select[Any]:
    """Every dataset with its status judged in SQL, as ``service.status.judge`` judges it,
    from its own row alone: the transactions that start and finish its runs keep its latest
    run's status and its last success there (``store.runs``).

    Whether a dataset is stale depends on the time and on its own limit: each distinct limit
    of *limits* (there are few) gets its own cut-off time, bound as ``since_<minutes>``, so the
    comparison is a plain one between times on every backend.
    """
    succeeded_at = DatasetRow.last_success_at
    since = func.coalesce(succeeded_at, DatasetRow.created_at)
    stale: ColumnElement[bool] = (
        or_(
            *(
                and_(
                    DatasetRow.stale_after == minutes,
                    since < bindparam(f"since_{minutes}", type_=UTCDateTime()),
                )
                for minutes in limits
            )
        )
        if limits
        else false()
    )
    last_status = DatasetRow.last_run_status
    # Two comparisons, not IN: a tuple of values would be an expanding parameter, which
    # SQLAlchemy renders into the SQL again at every execution.
    failed = or_(last_status == "failed", last_status == "interrupted")
    # The status as its place in BADGES: one CASE a row, which the status filter and sort use.
    precedence = case(
        (last_status == "running", BADGES.index("running")),
        (DatasetRow.failing, BADGES.index("failing")),
        (failed, BADGES.index("failed")),
        (stale, BADGES.index("stale")),
        (last_status.is_(None), BADGES.index("never")),
        else_=BADGES.index("success"),
    )
    attention = or_(DatasetRow.failing, failed, stale, succeeded_at.is_(None))
    return select(
        DatasetRow.name,
        AccountRow.connector,
        DatasetRow.report,
        last_status.label("last_status"),
        DatasetRow.failing,
        # A boolean the same on every backend: SQLite gives 0/1 for a bare comparison.
        case((stale, True), else_=False).label("stale"),
        DatasetRow.stale_after,
        succeeded_at.label("last_success"),
        DatasetRow.next_run_at,
        DatasetRow.table_rows,
        precedence.label("precedence"),
        case((attention, True), else_=False).label("attention"),
    ).join(AccountRow, DatasetRow.account_id == AccountRow.id)


def _having_status(judged: Subquery, status: str) -> ColumnElement[bool]:
    """The condition of the status filter: a status, ``attention`` or none (every line)."""
    if status == "attention":
        return judged.c.attention == true()
    if status:
        return judged.c.precedence == BADGES.index(status)
    return true()


@lru_cache(maxsize=512)
def _status_statements(
    limits: tuple[int, ...],
    *,
    search: bool,
    connector: bool,
    account: bool,
    status: str,
    sort: str,
    paged: bool,
) -> tuple[Select[Any], Select[Any]]:
    """The counts and the page of a list whose filters take this shape, built once: the
    values (the search's pattern, the connector, the account, the stale cut-offs, the offset
    and limit) are bound parameters, so a request only executes statements SQLAlchemy has
    compiled already."""
    matching: list[ColumnElement[bool]] = []
    if search:
        pattern = bindparam("pattern")
        matching.append(
            or_(
                _CaseFolded(DatasetRow.name).like(pattern, escape="\\"),
                _CaseFolded(DatasetRow.display_name).like(pattern, escape="\\"),
                _CaseFolded(DatasetRow.description).like(pattern, escape="\\"),
            )
        )
    if connector:
        matching.append(AccountRow.connector == bindparam("connector"))
    if account:
        matching.append(AccountRow.name == bindparam("account"))
    judged = _status_lines(limits).where(*matching).subquery("judged")
    wanted = _having_status(judged, status)
    # The counts and the page are two statements: the counts read every matching
    # dataset's light row once, and the page only needs the rows it shows, which the
    # database finds by index when sorted by name (thousands of rows are never numbered
    # or sorted for a page of 50).
    counts = select(
        func.count(case((wanted, 1))),
        func.count(case((judged.c.attention, 1))),
        select(func.count(DatasetRow.id)).scalar_subquery(),
        select(func.count(DatasetRow.id)).where(*_TO_COUNT).scalar_subquery(),
    )
    column = _SORT_COLUMNS[sort.removeprefix("-")]
    key = judged.c[column]
    order = key.desc() if sort.startswith("-") else key.asc()
    # Names are never null: sorting by name alone lets the database read its index.
    ordering = (order,) if column == "name" else (key.is_(None), order, judged.c.name)
    page = (
        select(*(judged.c[name] for name in _LISTED_COLUMNS))
        .where(wanted)
        .order_by(*ordering)
        .offset(bindparam("offset"))
    )
    return counts, page.limit(bindparam("limit")) if paged else page


def _status_page(
    session: Session,
    now: datetime,
    *,
    search: str = "",
    connector: str = "",
    account: str = "",
    status: str = "",
    sort: str = "name",
    offset: int = 0,
    limit: int | None = None,
) -> tuple[StatusPage, int]:
    """The page :meth:`ListingMixin.list_statuses` describes, read in *session*, and how many
    datasets there are to count (:meth:`ListingMixin.datasets_to_count`)."""
    connection = session.connection()
    limits = tuple(sorted(connection.scalars(_STALE_LIMITS)))
    counts, page = _status_statements(
        limits,
        search=bool(search),
        connector=bool(connector),
        account=bool(account),
        status=status,
        sort=sort,
        paged=limit is not None,
    )
    values: dict[str, Any] = {
        "pattern": _like(search),
        "connector": connector,
        "account": account,
        "offset": offset,
        "limit": limit,
    }
    values |= {f"since_{minutes}": now - timedelta(minutes=minutes) for minutes in limits}
    total, flagged, every, to_count = connection.execute(counts, values).one()
    found = [ListedDataset(*row) for row in connection.execute(page, values).all()]
    return StatusPage(found, int(total or 0), int(flagged or 0), int(every or 0)), to_count


_PAGE_DATASETS = DATASETS_WITH_LATEST_RUN.where(
    DatasetRow.name.in_(bindparam("names", expanding=True))
)
_ACCOUNT_LINES = select(AccountRow.name, AccountRow.connector, AccountRow.config).order_by(
    AccountRow.name
)


@lru_cache(maxsize=8)
def _recent_runs(recent: int) -> Select[Any]:
    """The statuses of the *recent* last runs of the datasets named ``names`` (a bound list),
    oldest first: one index seek for each one's *recent*-th newest run's id and a short range
    read, however long its history."""
    older = aliased(RunRow)
    oldest_shown = (
        select(older.id)
        .where(older.dataset_id == DatasetRow.id)
        .order_by(older.id.desc())
        .offset(recent - 1)
        .limit(1)
        .correlate(DatasetRow)
        .scalar_subquery()
    )
    return (
        select(DatasetRow.name, RunRow.status)
        .join(
            RunRow,
            and_(RunRow.dataset_id == DatasetRow.id, RunRow.id >= func.coalesce(oldest_shown, 0)),
        )
        .where(DatasetRow.name.in_(bindparam("names", expanding=True)))
        .order_by(DatasetRow.name, RunRow.id)
    )


def _page_details(session: Session, names: Sequence[str], recent: int) -> PageDetails:
    """What :meth:`ListingMixin.page_details` describes, read in *session*."""
    connection = session.connection()
    # Rows are fetched all at once (.all()): iterating a result fetches them one by one.
    rows = connection.execute(_PAGE_DATASETS, {"names": names}).all()
    found = {row.name: dataset_of(row) for row in rows}
    statuses: dict[str, list[str]] = defaultdict(list)
    for name, status in connection.execute(_recent_runs(recent), {"names": names}).all():
        statuses[name].append(status)
    lines = [AccountLine(*row) for row in connection.execute(_ACCOUNT_LINES).all()]
    return PageDetails([found[n] for n in names if n in found], dict(statuses), lines)


def _to_count(session: Session) -> list[Dataset]:
    """What :meth:`ListingMixin.datasets_to_count` describes, read in *session*."""
    return load_datasets(session, *_TO_COUNT)


class ListingMixin:
    """The Data Center's and the history's reads (mixed into :class:`Store`)."""

    _read: Callable[[], AbstractContextManager[Session]]

    def list_statuses(self, now: datetime, **filters: Any) -> StatusPage:
        """One page of the datasets matching the *filters* (``search``, ``connector``,
        ``account``, ``status``, ``sort``, ``offset``, ``limit``, all optional), with their
        status at *now*, and the counts the Data Center shows: filtering, sorting, paging and
        counting all run in the database, so only the page's rows come back whatever the
        number of datasets.

        *search* is found in a dataset's name, display name or description (any case);
        *connector* and *account* must match exactly; *status* is one of :data:`BADGES` or
        ``attention``; *sort* is ``name``, ``status``, ``last_success``, ``next_run`` or
        ``rows`` (its main table's, as recorded), a leading ``-`` reversing it: ties go by
        name, and datasets without a value come last either way.
        ``limit`` None lists every match from ``offset`` on.
        """
        with self._read() as session:
            return _status_page(session, now, **filters)[0]

    def list_page(
        self, now: datetime, recent: int = 5, **filters: Any
    ) -> tuple[StatusPage, PageDetails, list[Dataset]]:
        """:meth:`list_statuses` with *filters*, :meth:`page_details` of its lines and
        :meth:`datasets_to_count`, in one read (what a page of the Data Center needs)."""
        with self._read() as session:
            found, to_count = _status_page(session, now, **filters)
            details = _page_details(session, [line.name for line in found.lines], recent)
            return found, details, _to_count(session) if to_count else []

    def datasets_to_count(self) -> list[Dataset]:
        """The datasets whose main table's rows are not known although they have loaded (a
        store from before the count was kept, or a run settled after its process died), and
        that are not running: the Data Center counts them in the warehouse."""
        with self._read() as session:
            return _to_count(session)

    def record_table_rows(self, counted: Sequence[tuple[Dataset, int]]) -> None:
        """Keep the main table's rows counted for each dataset, unless it has run since it was
        read (its latest run is no longer the one read) or its rows were recorded meanwhile."""
        with self._write() as session:
            for dataset, rows in counted:
                seen = dataset.last_run.id if dataset.last_run else None
                session.execute(
                    update(DatasetRow)
                    .where(
                        DatasetRow.id == dataset.id,
                        DatasetRow.last_run_id == seen,
                        DatasetRow.last_run_status != "running",
                        DatasetRow.table_rows.is_(None),
                    )
                    .values(table_rows=rows)
                )

    def page_details(self, names: Sequence[str], recent: int = 5) -> PageDetails:
        """What a page of the list shows beyond the summaries, in one read: the datasets called
        *names* (in that order), the statuses of each one's last *recent* runs (oldest first)
        and every account (no secret read)."""
        with self._read() as session:
            return _page_details(session, names, recent)

    def history_page(
        self,
        dataset: str,
        *,
        status: str = "",
        trigger: str = "",
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[tuple[int, Run]], int]:
        """A page of *dataset*'s runs, newest first, each with its number in the dataset's
        history (1 for its first run), and how many runs match *status* and *trigger*.

        Raises:
            NotFoundError: no such dataset.
        """
        with self._read() as session:
            dataset_id = dataset_row(session, dataset).id
            numbered = (
                select(RunRow, func.row_number().over(order_by=RunRow.id).label("number"))
                .where(RunRow.dataset_id == dataset_id)
                .subquery()
            )
            run = aliased(RunRow, numbered)
            matching = [numbered.c.status == status] if status else []
            matching += [numbered.c.trigger == trigger] if trigger else []
            total = session.scalar(select(func.count()).select_from(numbered).where(*matching))
            found = session.execute(
                select(run, numbered.c.number)
                .where(*matching)
                .order_by(numbered.c.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [(number, to_run(row, dataset)) for row, number in found], int(total or 0)

    def run_number(self, run_id: int) -> int:
        """The place of run *run_id* in its dataset's history (1 for its first run; 0 if no
        such run)."""
        dataset_id = select(RunRow.dataset_id).where(RunRow.id == run_id).scalar_subquery()
        query = select(func.count(RunRow.id)).where(
            RunRow.dataset_id == dataset_id, RunRow.id <= run_id
        )
        with self._read() as session:
            return int(session.scalar(query) or 0)
