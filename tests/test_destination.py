"""dlt's settings for leadferry's runs (leadferry.destination)."""

from __future__ import annotations

import dlt

from leadferry.destination import configure_dlt


def test_dlt_reads_its_settings_from_the_environment_at_each_lookup(settings, monkeypatch):
    configure_dlt(settings)
    monkeypatch.setenv("DATA_WRITER__BUFFER_MAX_ITEMS", "123")
    assert int(dlt.config["data_writer.buffer_max_items"]) == 123
    monkeypatch.setenv("DATA_WRITER__BUFFER_MAX_ITEMS", "456")
    assert int(dlt.config["data_writer.buffer_max_items"]) == 456


def test_dlt_still_reads_secrets_from_the_environment(settings, monkeypatch):
    configure_dlt(settings)
    configure_dlt(settings)  # a second run's set-up keeps the one provider
    monkeypatch.setenv("SOURCES__ACME__API_TOKEN", "first-token")
    assert dlt.secrets["sources.acme.api_token"] == "first-token"
    monkeypatch.setenv("SOURCES__ACME__API_TOKEN", "second-token")
    assert dlt.secrets["sources.acme.api_token"] == "second-token"


def test_a_runs_files_hold_no_dictionaries_or_statistics_and_read_back_whole(settings, tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadferry.destination import warehouse_destination

    configure_dlt(settings)
    pipeline = dlt.pipeline(
        pipeline_name="files",
        destination=warehouse_destination(tmp_path / "warehouse.duckdb"),
        dataset_name="files",
        pipelines_dir=str(settings.pipelines_dir),
    )
    table = pa.table({"uid": [1, 2, 3], "email": ["a", "b", "a"]})
    pipeline.extract(dlt.resource([table], name="leads"))
    (load_id,) = pipeline.list_extracted_load_packages()
    (job,) = pipeline.get_load_package_info(load_id).jobs["new_jobs"]
    columns = pq.ParquetFile(job.file_path).metadata.row_group(0)
    chunks = {
        columns.column(i).path_in_schema: columns.column(i) for i in range(columns.num_columns)
    }
    assert "RLE_DICTIONARY" not in chunks["email"].encodings
    assert "RLE_DICTIONARY" in chunks["_dlt_load_id"].encodings
    assert {chunk.statistics for chunk in chunks.values()} == {None}
    assert {chunk.compression for chunk in chunks.values()} == {"LZ4"}
    read = duckdb.sql(f"select uid, email, _dlt_load_id from read_parquet('{job.file_path}')")
    assert read.fetchall() == [(uid, email, load_id) for uid, email in enumerate("aba", 1)]
