"""The scheduler's side of the store: which datasets are due, and claiming their slots.

Claims are compare-and-set updates: a slot (or a retry) is taken by updating the dataset's row
only if it still holds the value the claimant read. Of two ``leadferry serve`` processes sharing
one metadata store, exactly one sees its update succeed; the other skips the slot.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, not_, or_, select, update
from sqlalchemy.orm import Session

from leadferry.store.orm import DatasetRow, RunRow
from leadferry.store.queries import dataset_row, load_datasets
from leadferry.store.records import SCHEDULE_STATE_FIELDS, Dataset, require_aware

_STATE_FIELDS = frozenset(SCHEDULE_STATE_FIELDS)


class SchedulingMixin:
    """Scheduler queries of :class:`~leadferry.store.Store` (which provides the sessions)."""

    _read: Callable[[], AbstractContextManager[Session]]
    _write: Callable[[], AbstractContextManager[Session]]

    def due_datasets(self, now: datetime, limit: int | None = None) -> list[Dataset]:
        """Datasets whose next slot or retry time has come (they may still be running), the
        longest-due first; the first *limit* of them if given."""
        require_aware(now, "now")
        slot_due = and_(DatasetRow.next_run_at.is_not(None), DatasetRow.next_run_at <= now)
        retry_due = and_(DatasetRow.retry_at.is_not(None), DatasetRow.retry_at <= now)
        retry_first = and_(
            retry_due, or_(not_(slot_due), DatasetRow.retry_at < DatasetRow.next_run_at)
        )
        due_since = case((retry_first, DatasetRow.retry_at), else_=DatasetRow.next_run_at)
        with self._read() as session:
            return load_datasets(session, or_(slot_due, retry_due), order_by=due_since, limit=limit)

    def stale_watched_datasets(self) -> list[tuple[Dataset, datetime | None]]:
        """Datasets with a stale-data alert, each with when its last successful run finished."""
        with self._read() as session:
            watched = DatasetRow.stale_after.is_not(None)
            datasets = load_datasets(session, watched)
            last_success = dict(
                session.execute(
                    select(RunRow.dataset_id, func.max(RunRow.finished_at))
                    .join(DatasetRow, RunRow.dataset_id == DatasetRow.id)
                    .where(watched, RunRow.status == "success")
                    .group_by(RunRow.dataset_id)
                ).all()
            )
            return [(dataset, last_success.get(dataset.id)) for dataset in datasets]

    def claim(self, name: str, expected: dict[str, Any], changes: dict[str, Any]) -> bool:
        """Apply *changes* to the dataset's scheduler state only if it still holds *expected*.

        Returns whether this caller won the claim.
        """
        for key in (*expected, *changes):
            if key not in _STATE_FIELDS:
                raise TypeError(f"{key} is not scheduler state")
        with self._write() as session:
            row = dataset_row(session, name, lock=True)
            conditions = [
                getattr(DatasetRow, key).is_(None) if value is None
                else getattr(DatasetRow, key) == value
                for key, value in expected.items()
            ]  # fmt: skip
            result = session.execute(
                update(DatasetRow).where(DatasetRow.id == row.id, *conditions).values(**changes)
            )
            return bool(result.rowcount)

    def claim_alert(self, name: str, kind: str, episode: str) -> bool:
        """Record that the *kind* alert of *episode* goes out; False if it already went.

        The dataset's row is locked while it is read and written, so of several nodes
        noticing the same episode exactly one sends the alert.
        """
        with self._write() as session:
            row = dataset_row(session, name, lock=True)
            if row.alert_state.get(kind) == episode:
                return False
            row.alert_state = {**row.alert_state, kind: episode}
            return True

    def set_state(self, name: str, **changes: Any) -> None:
        """Set scheduler state unconditionally (after a run, or when a schedule changes)."""
        self.claim(name, {}, changes)
