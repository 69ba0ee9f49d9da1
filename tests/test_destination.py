"""The warehouse destination's one-copy replace, through real dlt pipelines into a DuckDB file."""

from __future__ import annotations

import dlt
import duckdb
import pyarrow as pa
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from leadferry.destination import configure_dlt, warehouse_destination


@pytest.fixture
def pipeline(settings):
    configure_dlt(settings)
    return dlt.pipeline(
        pipeline_name="items",
        destination=warehouse_destination(settings.warehouse_path),
        dataset_name="shop",
        pipelines_dir=str(settings.pipelines_dir),
    )


def replace(pipeline, *batches: pa.Table):
    resource = dlt.resource(list(batches), name="items", write_disposition="replace")
    info = pipeline.run(resource)
    info.raise_on_failed_jobs()
    return info.loads_ids[-1]


def rows(settings, query="select id, name, _dlt_load_id from shop.items order by id"):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.sql(query).fetchall()


def items(*ids: int) -> pa.Table:
    return pa.table({"id": list(ids), "name": [f"item {i}" for i in ids]})


def test_replace_keeps_only_the_last_loads_rows(settings, pipeline):
    replace(pipeline, items(1, 2, 3))
    load_id = replace(pipeline, items(3, 4))
    assert rows(settings) == [(3, "item 3", load_id), (4, "item 4", load_id)]
    # No staging copy: the rows went straight into the dataset's table.
    staged = "select count(*) from duckdb_tables() where schema_name = 'shop_staging'"
    assert rows(settings, staged + " and table_name = 'items'") == [(0,)]


def test_a_failed_load_leaves_the_previous_rows(settings, pipeline):
    replace(pipeline, items(1, 2))
    before = rows(settings)
    with duckdb.connect(str(settings.warehouse_path)) as connection:
        connection.execute("alter table shop.items alter column name set not null")
    # The new rows reach the database, which refuses them after the old ones were deleted in
    # the same transaction: the delete must be rolled back with the insert.
    broken = pa.table({"id": [7, 8], "name": ["item 7", None]})
    with pytest.raises(PipelineStepFailed, match="NOT NULL"):
        replace(pipeline, broken)
    assert rows(settings) == before


def test_a_table_in_several_files_keeps_every_file(settings, pipeline, monkeypatch):
    monkeypatch.setenv("DATA_WRITER__FILE_MAX_ITEMS", "2")
    replace(pipeline, items(1, 2, 3))
    load_id = replace(pipeline, items(10, 11), items(12, 13), items(14))
    jobs = pipeline.last_trace.last_load_info.load_packages[0].jobs["completed_jobs"]
    assert len([job for job in jobs if job.job_file_info.table_name == "items"]) > 1
    assert rows(settings) == [(i, f"item {i}", load_id) for i in range(10, 15)]


def test_append_and_merge_are_dlts_own(settings, pipeline):
    resource = dlt.resource([items(1, 2)], name="items", write_disposition="append")
    pipeline.run(resource).raise_on_failed_jobs()
    pipeline.run(resource).raise_on_failed_jobs()
    assert len(rows(settings)) == 4
    merged = dlt.resource([items(2, 5)], name="items", write_disposition="merge", primary_key="id")
    pipeline.run(merged).raise_on_failed_jobs()
    assert sorted(r[0] for r in rows(settings)) == [1, 1, 2, 5]
