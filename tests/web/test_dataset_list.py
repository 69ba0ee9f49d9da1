"""The Data Center's list at size: search, filters, sorting and paging, in the page and the
REST API, and each dataset's recent runs at a glance."""

from __future__ import annotations

import re

import pytest

from leadferry.errors import AuthError
from leadferry.settings import Settings
from leadferry.warehouse import Warehouse
from tests.conftest import NOW
from tests.web.conftest import api_client, building_acme_home
from tests.web.test_data_center import make_dataset


@pytest.fixture(scope="module")
def home_template(tmp_path_factory, migrated_home) -> Settings:
    """Seven datasets over two accounts: two ran (one of them twice), three failed."""
    with building_acme_home(tmp_path_factory, migrated_home) as (settings, store, run):
        store.create_account(
            "broken", "leadexec", {"base_url": "http://leadexec.test/"}, {"api_key": "not-the-key"}
        )
        for i in range(4):
            make_dataset(store, f"calls_{i}", description=f"Call center batch {i}")
        for i in range(3):
            make_dataset(store, f"web_{i}", account="broken", description="Web forms")
        run("calls_0")
        run("calls_0")
        run("calls_1")
        for i in range(3):
            with pytest.raises(AuthError):
                run(f"web_{i}")
    return settings


@pytest.fixture
def fleet(home_template, store):
    """The seven datasets, in a copy of their home (tests.conftest ``settings``)."""
    return store


def names_in(page: str) -> list[str]:
    return re.findall(r'<tr id="row-([a-z0-9_]+)"', page)


@pytest.fixture
def viewer_api(app, store, users):
    with api_client(app, store, "vera") as client:
        yield client


def listed(client, **params) -> dict:
    answer = client.get("/api/v1/datasets", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_page_searches_filters_sorts_and_pages(fleet, viewer):
    assert viewer.get("/?q=BATCH").text.count('data-testid="dataset-row"') == 4
    assert names_in(viewer.get("/?q=web forms").text) == ["web_0", "web_1", "web_2"]
    assert names_in(viewer.get("/?account=broken").text) == ["web_0", "web_1", "web_2"]
    assert names_in(viewer.get("/?connector=leadexec&status=never").text) == ["calls_2", "calls_3"]
    assert names_in(viewer.get("/?sort=-name").text)[:2] == ["web_2", "web_1"]
    assert names_in(viewer.get("/?sort=status").text)[:3] == ["web_0", "web_1", "web_2"]
    newest = names_in(viewer.get("/?sort=-last_success").text)
    assert newest[:2] == ["calls_0", "calls_1"] or newest[:2] == ["calls_1", "calls_0"]
    assert set(newest[2:]) == {"calls_2", "calls_3", "web_0", "web_1", "web_2"}

    first = viewer.get("/?size=25&sort=name").text
    assert 'id="pager"' not in first
    paged = viewer.get("/?size=3&page=2").text
    assert names_in(paged) == ["calls_3", "web_0", "web_1"]
    assert "4–6 of 7 · page 2 of 3" in paged
    assert 'href="/?size=3&amp;page=3"' in paged  # next
    assert 'href="/?size=3"' in paged  # previous: page 1

    filtered = viewer.get("/?q=web", headers={"HX-Request": "true"}).text
    assert filtered.lstrip().startswith("<section")  # the list alone
    assert "3 of 7 datasets match, 3 need attention" in filtered
    nothing = viewer.get("/?q=nothing-like-this").text
    assert 'id="no-match"' in nothing
    assert viewer.get("/?sort=colour").status_code == 422


def test_each_line_shows_its_last_runs_oldest_first(fleet, viewer):
    page = viewer.get("/").text
    line = re.search(r'<tr id="row-calls_0".*?</tr>', page, re.S).group(0)
    assert re.findall(r'class="recent-mark (\w+)"', line) == ["success", "success"]
    failed = re.search(r'<tr id="row-web_0".*?</tr>', page, re.S).group(0)
    assert re.findall(r'class="recent-mark (\w+)"', failed) == ["failed"]


def test_the_api_lists_a_page_with_the_total_and_keeps_every_dataset_by_default(fleet, viewer_api):
    everything = listed(viewer_api)
    assert everything["count"] == everything["total"] == 7
    assert everything["limit"] is None
    assert [d["name"] for d in everything["data"]][:2] == ["calls_0", "calls_1"]
    assert everything["data"][0]["recent_runs"] == ["success", "success"]

    page = listed(viewer_api, limit=2, offset=2, sort="-name")
    assert [d["name"] for d in page["data"]] == ["web_0", "calls_3"]
    assert (page["count"], page["total"], page["offset"], page["limit"]) == (2, 7, 2, 2)
    failed = listed(viewer_api, status="failed", q="WEB")
    assert [d["name"] for d in failed["data"]] == ["web_0", "web_1", "web_2"]
    assert {d["status"] for d in failed["data"]} == {"failed"}
    assert listed(viewer_api, account="acme", status="attention")["total"] == 2
    assert listed(viewer_api, connector="avidtrak")["total"] == 0
    assert listed(viewer_api, q="100%_")["total"] == 0  # LIKE's wildcards are taken literally
    refused = viewer_api.get("/api/v1/datasets", params={"status": "sleepy"})
    assert refused.status_code == 422
    assert "status must be one of" in refused.json()["detail"]


def test_the_history_numbers_runs_per_dataset_filters_and_pages(fleet, store, viewer, viewer_api):
    # 22 runs in all (calls_0's two runs came first): the history shows what the store
    # recorded, so the 21 more are recorded as a run records them, without loading again.
    for _ in range(21):
        started = store.start_run("calls_1", "manual", None, None, NOW)
        store.finish_run(started.id, "success", NOW, rows={"leads": 1})
    page = viewer.get("/datasets/calls_1").text
    numbers = re.findall(r'data-number="(\d+)"', page)
    assert numbers == [str(n) for n in range(22, 2, -1)]  # 20 a page, newest first
    assert 'id="history-pager"' in page
    assert "page 1 of 2" in page
    older = viewer.get("/datasets/calls_1/history?page=2").text
    assert re.findall(r'data-number="(\d+)"', older) == ["2", "1"]
    assert ">#1</td>" in older

    failed = viewer.get("/datasets/web_0/history?status=failed&trigger=manual").text
    assert re.findall(r'data-number="(\d+)"', failed) == ["1"]
    assert "1 run matches" in failed
    assert 'id="no-matching-runs"' in viewer.get("/datasets/web_0/history?status=success").text
    assert viewer.get("/datasets/web_0/history?status=sleepy").status_code == 422

    listed_runs = viewer_api.get(
        "/api/v1/datasets/calls_1/runs", params={"limit": 2, "offset": 20}
    ).json()
    assert [r["number"] for r in listed_runs["data"]] == [2, 1]
    assert (listed_runs["count"], listed_runs["total"]) == (2, 22)
    first = listed_runs["data"][1]
    assert viewer_api.get(f"/api/v1/runs/{first['id']}").json()["number"] == 1
    manual = viewer_api.get("/api/v1/datasets/calls_1/runs", params={"trigger": "scheduled"})
    assert manual.json()["total"] == 0


def test_the_dataset_page_charts_rows_per_report_day_from_the_warehouse(fleet, settings, viewer):
    per_day = Warehouse(settings.warehouse_path).query(
        "select report_day, count(*) from calls_0.leads group by 1 order by 1"
    )
    page = viewer.get("/datasets/calls_0").text
    assert 'data-testid="data-chart"' in page
    shown = re.findall(r"<title>(\d{4}-\d\d-\d\d): ([\d,]+) rows</title>", page)
    assert shown == [(str(day), f"{rows:,}") for day, rows in per_day.rows]
    assert 'data-testid="data-chart"' not in viewer.get("/datasets/calls_2").text  # never ran


def test_a_paused_dataset_is_paused_on_the_data_center_and_its_page(fleet, store, viewer):
    store.update_dataset("web_1", when_failing="pause")
    store.set_state("web_1", failing=True)
    line = re.search(r'<tr id="row-web_1".*?</tr>', viewer.get("/").text, re.S).group(0)
    assert 'data-status="paused"' in line
    assert "paused while failing" in line
    assert 'data-status="paused"' in viewer.get("/datasets/web_1").text
    assert 'data-status="paused"' not in viewer.get("/datasets/web_0").text
