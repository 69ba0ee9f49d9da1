"""The Data Center's queries: every dataset in one light row, and what a page of them shows.

At thousands of datasets the list cannot load every dataset with its settings, nor ask the
runs table once per dataset: one query gives each dataset the few columns its status, search,
filters and sorting need; the page then loads its own datasets, their recent runs and the
accounts in one read (:meth:`page_details`): a fixed number of queries whatever the size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import aliased

from leadferry.store.orm import AccountRow, DatasetRow, RunRow
from leadferry.store.queries import dataset_row, load_datasets, to_run
from leadferry.store.records import AccountLine, DatasetSummary, PageDetails, Run

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

    def count_datasets(self) -> int:
        with self._read() as session:
            return int(session.scalar(select(func.count(DatasetRow.id))) or 0)

    def page_details(self, names: Sequence[str], recent: int = 5) -> PageDetails:
        """What a page of the list shows beyond the summaries, in one read: the datasets called
        *names* (in that order), the statuses of each one's last *recent* runs (oldest first)
        and every account (no secret read)."""
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
        last_runs = (
            select(numbered.c.name, numbered.c.status)
            .where(numbered.c.age <= recent)
            .order_by(numbered.c.name, numbered.c.age.desc())
        )
        accounts = select(AccountRow.name, AccountRow.connector, AccountRow.config).order_by(
            AccountRow.name
        )
        statuses: dict[str, list[str]] = defaultdict(list)
        with self._read() as session:
            found = {d.name: d for d in load_datasets(session, DatasetRow.name.in_(names))}
            for name, status in session.execute(last_runs):
                statuses[name].append(status)
            lines = [AccountLine(*row) for row in session.execute(accounts)]
        return PageDetails([found[n] for n in names if n in found], dict(statuses), lines)

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
