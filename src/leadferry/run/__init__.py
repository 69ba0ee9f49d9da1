"""One run of one dataset: plan it (:mod:`.plan`), fetch through an account's connector
(:mod:`.client`), load through dlt (:mod:`.load`), record the run.

Fetching streams Arrow batches from the connector straight into dlt's extract step; the warehouse
lock is taken only to apply the load. Every run, failed or not, ends up in the history.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from leadferry.clock import utc_now
from leadferry.errors import LeadferryError
from leadferry.run.plan import plan_run

if TYPE_CHECKING:
    import httpx2

    from leadferry.connectors.base import FetchProgress
    from leadferry.dates import DateWindow
    from leadferry.settings import Settings
    from leadferry.store import Run, Store

logger = logging.getLogger(__name__)


def run_dataset(
    store: Store,
    settings: Settings,
    name: str,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    trigger: str = "manual",
    window: DateWindow | None = None,
    client: httpx2.Client | None = None,
    progress: Callable[[FetchProgress], None] | None = None,
    as_of: dt.datetime | None = None,
    slot: dt.datetime | None = None,
    attempt: int = 0,
    worker: str | None = None,
    job_key: str | None = None,
) -> Run:
    """Run dataset *name* once and record it in the history.

    ``clock`` tells the time (the window is resolved for its "today"); ``window`` overrides the
    dataset's date selection (backfills); ``client`` replaces the HTTP client (tests pass a
    simulator's). ``as_of`` resolves the date selection for another instant than now (a
    scheduled slot, so a late or retried run takes the slot's window); ``slot`` and ``attempt``
    are recorded with the run. ``worker`` (a heartbeating worker's name) and ``job_key`` (the
    queued job served) go to :meth:`Store.start_run`. The run is recorded even when it fails.

    Raises:
        NotFoundError: there is no such dataset.
        BusyError: the dataset is already running (AccountBusyError: its account runs its most
            datasets at once; DuplicateJobError: ``job_key`` already ran).
        LeadferryError: the run failed; the history has the same message.
    """
    # Here, not above: commands that only read a dataset's zone import leadferry.run.plan, and
    # with it this package, and need neither the HTTP client nor the loader (0.1 CPU-s).
    from leadferry.run.client import connected
    from leadferry.run.load import load

    dataset = store.get_dataset(name)
    now = clock()
    claim = {"slot": slot, "attempt": attempt, "worker": worker, "job_key": job_key}
    try:
        account = store.get_account(dataset.account)
        plan = plan_run(account, dataset, as_of or now, window, dataset.state.cursor)
    except LeadferryError as exc:
        run = store.start_run(name, trigger, None, None, now, **claim)
        store.finish_run(run.id, "failed", now, error=str(exc))
        raise
    run = store.start_run(name, trigger, *plan.recorded_window, now, **claim)
    logger.info("%s: run %d started, window %s", name, run.id, plan.window)
    try:
        with connected(plan.account, settings, client) as connector:
            batches = connector.fetch(
                plan.report, plan.params, plan.window, progress, updated_since=plan.updated_since
            )
            outcome = load(
                plan, settings, batches, holder=f"dataset {name} (run {run.id})", run_id=run.id
            )
        if outcome.cursor is not None and (
            dataset.state.cursor is None or outcome.cursor > dataset.state.cursor
        ):
            store.set_state(name, cursor=outcome.cursor)
    except LeadferryError as exc:
        store.finish_run(run.id, "failed", clock(), error=str(exc))
        raise
    except KeyboardInterrupt:
        store.finish_run(run.id, "interrupted", clock(), error="interrupted")
        raise
    except Exception as exc:
        from leadferry.failures import storage_failure

        error = storage_failure(exc) or f"internal error: {type(exc).__name__}"
        store.finish_run(run.id, "failed", clock(), error=error)
        raise
    return store.finish_run(
        run.id,
        "success",
        clock(),
        rows=outcome.rows,
        error=connector.note,  # a successful run's note: what was loaded other than asked
        load_id=outcome.load_id,
        schema_changes=outcome.schema_changes,
        table_rows=outcome.table_rows,
    )
