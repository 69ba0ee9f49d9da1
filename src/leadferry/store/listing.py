"""The Data Center's queries: every dataset in one light row, and what a page of them shows.

At thousands of datasets the list cannot load every dataset with its settings, nor ask the
runs table once per dataset: one query gives each dataset the few columns its status, search,
filters and sorting need; the page then loads its own datasets (:meth:`Store.get_datasets`)
and their recent runs (:meth:`recent_statuses`), a fixed number of queries whatever the size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import aliased

from leadferry.store.orm import AccountRow, DatasetRow, RunRow
from leadferry.store.queries import dataset_row, load_datasets, to_run
from leadferry.store.records import Dataset, DatasetSummary, Run

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session


def _like(text: str) -> str:
    """A LIKE pattern matching *text* anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


class ListingMixin:
    """The Data Center's and the history's reads (mixed into :class:`Store`)."""

    _read: Callable[[], AbstractContextManager[Session]]

    def summarize_datasets(
        self, search: str = "", connector: str = "", account: str = ""
    ) -> list[DatasetSummary]:
        """Every dataset matching the filters, by name, in one query: *search* is found in its
        name or description (any case); *connector* and *account* must match exactly."""
        # One pass over the runs gives both the latest run and the last success.
        success_finished = case((RunRow.status == "success", RunRow.finished_at))
        newest = (
            select(
                RunRow.dataset_id,
                func.max(RunRow.id).label("run_id"),
                func.max(success_finished).label("succeeded_at"),
            )
            .group_by(RunRow.dataset_id)
            .subquery()
        )
        last = select(RunRow.id, RunRow.status).subquery()
        query = (
            select(
                DatasetRow.id,
                DatasetRow.name,
                DatasetRow.description,
                AccountRow.name,
                AccountRow.connector,
                DatasetRow.report,
                # Only a stale limit needs it: the fewer times to convert, the faster.
                case((DatasetRow.stale_after.is_not(None), DatasetRow.created_at)),
                DatasetRow.next_run_at,
                DatasetRow.failing,
                DatasetRow.stale_after,
                last.c.status,
                newest.c.succeeded_at,
            )
            .join(AccountRow, DatasetRow.account_id == AccountRow.id)
            .outerjoin(newest, newest.c.dataset_id == DatasetRow.id)
            .outerjoin(last, last.c.id == newest.c.run_id)
            .order_by(DatasetRow.name)
        )
        if search:
            pattern = _like(search)
            query = query.where(
                or_(
                    func.lower(DatasetRow.name).like(pattern, escape="\\"),
                    func.lower(DatasetRow.description).like(pattern, escape="\\"),
                )
            )
        if connector:
            query = query.where(AccountRow.connector == connector)
        if account:
            query = query.where(AccountRow.name == account)
        with self._read() as session:
            # Core rows, not ORM ones: thousands of them, and no object to track.
            rows = session.connection().execute(query).all()
        return [DatasetSummary(*row) for row in rows]

    def list_account_names(self) -> list[tuple[str, str]]:
        """Every account's name and connector, by name (no secrets read)."""
        with self._read() as session:
            query = select(AccountRow.name, AccountRow.connector).order_by(AccountRow.name)
            return [(name, connector) for name, connector in session.execute(query)]

    def count_datasets(self) -> int:
        with self._read() as session:
            return int(session.scalar(select(func.count(DatasetRow.id))) or 0)

    def get_datasets(self, names: Sequence[str]) -> list[Dataset]:
        """The datasets called *names* (those that exist), in that order, in two queries."""
        with self._read() as session:
            found = {d.name: d for d in load_datasets(session, DatasetRow.name.in_(names))}
        return [found[name] for name in names if name in found]

    def recent_statuses(self, names: Sequence[str], count: int = 5) -> dict[str, list[str]]:
        """The statuses of the last *count* runs of each of *names*, oldest first, in one query."""
        numbered = (
            select(
                DatasetRow.name,
                RunRow.status,
                func.row_number()
                .over(partition_by=RunRow.dataset_id, order_by=RunRow.id.desc())
                .label("age"),
            )
            .join(DatasetRow, RunRow.dataset_id == DatasetRow.id)
            .where(DatasetRow.name.in_(names))
            .subquery()
        )
        query = (
            select(numbered.c.name, numbered.c.status)
            .where(numbered.c.age <= count)
            .order_by(numbered.c.name, numbered.c.age.desc())
        )
        statuses: dict[str, list[str]] = defaultdict(list)
        with self._read() as session:
            for name, status in session.execute(query):
                statuses[name].append(status)
        return dict(statuses)

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
