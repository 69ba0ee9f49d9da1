"""The run service in-process: a clock the test moves, the simulator, real SQLite and DuckDB."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from leadferry.schedule import Schedule
from leadferry.scheduler import MOST_CLAIMS_PER_TICK, Scheduler, reschedule, resume
from leadferry.store import DatasetSpec, Store
from tests.conftest import NOW, leadexec_app

# Webhooks are posted with their own short timeout; the in-process client has no network to
# time out, and starlette says so with a warning.
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
HOUR = dt.timedelta(hours=1)


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock():
    # Two days before NOW, so that windows resolved for scheduled slots hold simulated leads.
    return Clock(NOW - dt.timedelta(days=2))


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.http_retries = 0
    settings.http_backoff = 0.0


@pytest.fixture
def failing_api():
    _, app = leadexec_app(fail_rate=1.0)
    with TestClient(app, base_url="http://leadexec.test") as client:
        yield client


@pytest.fixture
def receiver(vendors):
    """A webhook receiver at http://hooks.test/hook, collecting what it is sent."""
    received: list[dict] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict:
        received.append(await request.json())
        return {"ok": True}

    return vendors.add("hooks.test", app) + "/hook", received


@pytest.fixture
def reaching(vendors):
    """``reaching(leadexec)``: a client to the receiver and to the *leadexec* simulator app."""
    clients = []

    def client(leadexec=None):
        if leadexec is not None:
            vendors.add("leadexec.test", leadexec)
        clients.append(vendors.client())
        return clients[-1]

    yield client
    for opened in clients:
        opened.close()


def hourly(store, clock, name="acme_leads", **fields):
    plan = Schedule.from_flags(every="1h", tz="America/Los_Angeles")
    spec = {"account": "acme", "report": "leads", "params": {"lid": 271},
            "schedule": plan.as_json()} | fields  # fmt: skip
    dataset = store.create_dataset(DatasetSpec(name=name, **spec))
    reschedule(store, dataset, clock())
    return dataset


def scheduler(store, settings, clock, client, **kwargs):
    return Scheduler(store, settings, clock=clock, client=client, workers=2, **kwargs)


def test_a_due_slot_runs_once_with_the_slots_window(store, settings, acme, leadexec_api, clock):
    hourly(store, clock)
    service = scheduler(store, settings, clock, leadexec_api)
    assert service.tick() == []
    clock.advance(HOUR)
    (job,) = service.tick()
    service.wait()
    assert job.trigger == "scheduled"
    assert service.tick() == [], "the same slot never runs twice"
    (run,) = store.list_runs("acme_leads")
    assert run.status == "success"
    assert run.trigger == "scheduled"
    assert run.slot == job.slot
    assert run.window_end.astimezone(dt.UTC) <= job.slot
    state = store.get_dataset("acme_leads").state
    assert state.last_slot == job.slot
    assert state.next_run_at == job.slot + HOUR
    service.shutdown()


def test_slots_missed_while_down_run_once(store, settings, acme, leadexec_api, clock):
    hourly(store, clock)
    clock.advance(5 * HOUR + dt.timedelta(minutes=10))
    service = scheduler(store, settings, clock, leadexec_api)
    jobs = service.tick()
    service.wait()
    assert len(jobs) == 1
    assert jobs[0].slot == clock.now.replace(minute=0, second=0, microsecond=0)
    assert service.tick() == []
    assert len(store.list_runs("acme_leads")) == 1
    service.shutdown()


def test_two_services_on_one_store_never_run_a_slot_twice(
    store, settings, acme, leadexec_api, clock
):
    for name in ("first_leads", "second_leads", "third_leads"):
        hourly(store, clock, name)
    clock.advance(HOUR)
    with Store.open(settings) as other_store:
        services = [
            scheduler(store, settings, clock, leadexec_api),
            scheduler(other_store, settings, clock, leadexec_api),
        ]
        barrier = threading.Barrier(2)
        started: list = []

        def tick(service):
            barrier.wait()
            started.extend(service.tick())

        threads = [threading.Thread(target=tick, args=(s,)) for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for service in services:
            service.wait()
            service.shutdown()
    assert sorted(job.dataset for job in started) == ["first_leads", "second_leads", "third_leads"]
    for name in ("first_leads", "second_leads", "third_leads"):
        assert [r.trigger for r in store.list_runs(name)] == ["scheduled"]


def test_a_failed_run_is_retried_then_succeeds(
    store, settings, acme, leadexec_api, failing_api, clock
):
    hourly(store, clock, retry_every=10, retries=2)
    clock.advance(HOUR)
    service = scheduler(store, settings, clock, failing_api)
    (first,) = service.tick()
    service.wait()
    state = store.get_dataset("acme_leads").state
    assert state.retry_at == clock.now + dt.timedelta(minutes=10)
    assert state.retry_attempt == 1
    clock.advance(dt.timedelta(minutes=5))
    assert service.tick() == [], "not before the retry time"
    clock.advance(dt.timedelta(minutes=5))
    service.client = leadexec_api
    (retry,) = service.tick()
    service.wait()
    assert (retry.trigger, retry.slot, retry.attempt) == ("retry", first.slot, 1)
    runs = store.list_runs("acme_leads")
    assert [(r.trigger, r.status, r.attempt) for r in runs] == [
        ("retry", "success", 1),
        ("scheduled", "failed", 0),
    ]
    assert runs[0].window_start == runs[1].window_start, "a retry takes its slot's window"
    state = store.get_dataset("acme_leads").state
    assert (state.failing, state.retry_at, state.retry_attempt) == (False, None, 0)
    service.shutdown()


def test_a_run_whose_worker_stopped_heartbeating_is_interrupted_then_retried(
    store, settings, acme, leadexec_api, clock
):
    hourly(store, clock, retry_every=10, retries=2)
    clock.advance(HOUR)
    slot = store.get_dataset("acme_leads").state.next_run_at
    store.claim("acme_leads", {}, {"last_slot": slot, "next_run_at": slot + HOUR})
    # A worker elsewhere claimed the slot, then went silent.
    lost = store.start_run("acme_leads", "scheduled", None, None, clock(), slot=slot,
                           worker="gone@elsewhere", job_key="lost-job")  # fmt: skip
    settings.run_lease = 0.001
    service = scheduler(store, settings, clock, leadexec_api)
    assert service.tick() == []
    assert store.get_run(lost.id).status == "interrupted"
    assert store.get_dataset("acme_leads").state.retry_at == clock.now + dt.timedelta(minutes=10)
    settings.run_lease = 60.0
    clock.advance(dt.timedelta(minutes=10))
    (retry,) = service.tick()
    service.wait()
    assert (retry.trigger, retry.slot, retry.attempt) == ("retry", slot, 1)
    latest = store.list_runs("acme_leads")[0]
    assert (latest.status, latest.worker, latest.job_key) == ("success", service.worker, retry.key)
    service.shutdown()


def test_a_tick_claims_at_most_its_share_longest_due_first(store, settings, acme, clock):
    for i in range(MOST_CLAIMS_PER_TICK + 5):
        hourly(store, clock, name=f"leads_{i:03d}")
    # The last five came due an hour before the others.
    for i in range(MOST_CLAIMS_PER_TICK, MOST_CLAIMS_PER_TICK + 5):
        store.set_state(f"leads_{i:03d}", next_run_at=clock.now)
    clock.advance(2 * HOUR)
    keeping = Keeping()
    service = Scheduler(store, settings, clock=clock, executor=keeping)
    first = service.tick()
    assert len(first) == MOST_CLAIMS_PER_TICK
    assert {job.dataset for job in first[:5]} == {
        f"leads_{i:03d}" for i in range(MOST_CLAIMS_PER_TICK, MOST_CLAIMS_PER_TICK + 5)
    }
    assert len(service.tick()) == 5
    assert len({job.dataset for job in keeping.jobs}) == MOST_CLAIMS_PER_TICK + 5
    service.shutdown()


class Keeping:
    """An executor that keeps what it is given, for the scheduler's own decisions."""

    def __init__(self):
        self.jobs = []

    def submit(self, job):
        self.jobs.append(job)

    def queued(self, name):
        return False

    def wait(self):
        """Nothing runs."""

    def shutdown(self):
        """Nothing runs."""


def test_after_the_last_retry_the_dataset_is_failing_and_an_alert_goes_out(
    store, settings, acme, clock, receiver, reaching
):
    url, received = receiver
    hourly(store, clock, retry_every=10, retries=1, alert_webhook=url)
    clock.advance(HOUR)
    service = scheduler(store, settings, clock, reaching(leadexec_app(fail_rate=1.0)[1]))
    service.tick()
    service.wait()
    clock.advance(dt.timedelta(minutes=10))
    service.tick()
    service.wait()
    assert store.get_dataset("acme_leads").state.failing
    service.shutdown()
    (alert,) = received
    assert alert["event"] == "leadferry.alert"
    assert alert["kind"] == "failing"
    assert alert["dataset"] == "acme_leads"
    assert alert["details"]["attempts"] == 2


def test_a_paused_failing_dataset_waits_until_resumed(
    store, settings, acme, leadexec_api, failing_api, clock
):
    hourly(store, clock, when_failing="pause")
    clock.advance(HOUR)
    service = scheduler(store, settings, clock, failing_api)
    service.tick()
    service.wait()
    assert store.get_dataset("acme_leads").state.failing
    service.client = leadexec_api
    clock.advance(3 * HOUR)
    assert service.tick() == []
    assert store.get_dataset("acme_leads").state.next_run_at is None
    resume(store, "acme_leads", clock())
    clock.advance(HOUR)
    (job,) = service.tick()
    service.wait()
    assert store.list_runs("acme_leads")[0].status == "success"
    assert not store.get_dataset("acme_leads").state.failing
    service.shutdown()


def test_a_failing_dataset_that_keeps_its_schedule_runs_its_next_slot(
    store, settings, acme, leadexec_api, failing_api, clock
):
    hourly(store, clock)  # when_failing="keep" is the default
    clock.advance(HOUR)
    service = scheduler(store, settings, clock, failing_api)
    service.tick()
    service.wait()
    assert store.get_dataset("acme_leads").state.failing
    service.client = leadexec_api
    clock.advance(HOUR)
    assert len(service.tick()) == 1
    service.wait()
    assert not store.get_dataset("acme_leads").state.failing
    service.shutdown()


def test_stale_manual_datasets_alert_once(settings, acme, clock, receiver, reaching):
    url, received = receiver
    spec = DatasetSpec(name="manual_leads", account="acme", report="leads", params={"lid": 271},
                       stale_after=60, alert_webhook=url)  # fmt: skip
    with Store.open(settings, clock=clock) as store:
        store.create_dataset(spec)
        service = scheduler(store, settings, clock, reaching())
        service.tick()
        service.wait()
        assert received == [], "not stale before an hour has passed"
        clock.advance(HOUR + dt.timedelta(seconds=1))
        service.tick()
        service.wait()
        clock.advance(HOUR)
        service.tick()
        service.wait()
        service.shutdown()
    assert [a["kind"] for a in received] == ["stale"]
    assert received[0]["dataset"] == "manual_leads"


def test_zero_rows_where_the_last_runs_had_rows_sends_an_alert(
    store, settings, acme, clock, receiver, reaching
):
    url, received = receiver
    hourly(store, clock, alert_webhook=url)
    service = scheduler(store, settings, clock, reaching(leadexec_app()[1]))
    for _ in range(2):
        clock.advance(HOUR)
        service.tick()
        service.wait()
    assert received == []
    store.update_dataset("acme_leads", params={"lid": 999})  # a lead type with no leads
    clock.advance(HOUR)
    service.tick()
    service.wait()
    service.shutdown()
    assert [r.total_rows > 0 for r in store.list_runs("acme_leads")] == [False, True, True]
    (alert,) = received
    assert alert["kind"] == "zero_rows"


def test_a_job_still_waiting_on_the_pool_is_dropped_and_a_started_one_is_not():
    from leadferry.executors import ThreadExecutor
    from leadferry.jobs import Job

    release, ran = threading.Event(), []

    def work(job: Job) -> None:
        ran.append(job.dataset)
        if job.dataset == "first":
            release.wait(10)

    executor = ThreadExecutor(1, work)
    executor.submit(Job("first", "manual", None, 0))
    executor.submit(Job("second", "manual", None, 0))  # waits for the only worker

    assert executor.cancel("second") is True
    assert executor.queued("second") is False
    release.set()
    executor.wait()
    assert executor.cancel("first") is False
    executor.shutdown()
    assert ran == ["first"]


def test_a_backfill_job_crosses_a_queue_whole():
    import json

    from leadferry.backfill import BackfillRequest
    from leadferry.jobs import Job

    days = BackfillRequest(NOW.date() - dt.timedelta(days=9), NOW.date(), 3)
    job = Job("acme_leads", "backfill", None, 0, backfill=days)

    assert Job.from_message(json.loads(json.dumps(job.as_message()))) == job
    plain = Job("acme_leads", "manual", None, 0)
    assert Job.from_message(json.loads(json.dumps(plain.as_message()))) == plain
