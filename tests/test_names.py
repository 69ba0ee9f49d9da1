"""Names that cannot collide: the database's own schemas are refused as dataset names, no run
writes outside its dataset's schema, and removing a dataset's data drops nothing of another's."""

from __future__ import annotations

import duckdb
import pytest

from leadferry.service.data import remove_dataset
from tests.test_cli import account, fails  # noqa: F401 (a fixture)
from tests.test_runner import make_dataset, run


@pytest.mark.parametrize(
    "name", ["main", "temp", "information_schema", "pg_catalog", "system", "pg_leads"]
)
def test_the_warehouses_own_schemas_cannot_name_a_dataset(account, name):  # noqa: F811
    line = fails(
        2, "datasets", "create", name, "--account", "acme", "--report", "leads", "--param", "lid=1"
    )
    assert line == (
        f"error: {name!r} cannot name a dataset: the warehouse keeps a schema of that name for "
        "itself; choose another name"
    )


def schemas(settings) -> dict[str, int]:
    """Every schema holding a table, with its rows of leads (or 0)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        found = connection.sql(
            "select distinct schema_name from duckdb_tables() order by 1"
        ).fetchall()
        counts = {}
        for (schema,) in found:
            tables = connection.sql(
                f"select count(*) from duckdb_tables() where schema_name = '{schema}' "
                "and table_name = 'leads'"
            ).fetchall()[0][0]
            counts[schema] = (
                connection.sql(f'select count(*) from "{schema}".leads').fetchall()[0][0]
                if tables
                else 0
            )
        return counts


def test_a_dataset_named_like_anothers_old_staging_schema_is_left_alone(
    store, settings, acme, leadexec_api
):
    make_dataset(store, name="xa_staging")
    run(store, settings, leadexec_api, name="xa_staging")
    make_dataset(store, name="xa", update_method="merge")
    run(store, settings, leadexec_api, name="xa")
    loaded = schemas(settings)
    assert loaded["xa_staging"] > 0
    assert loaded["xa"] == loaded["xa_staging"]  # the merge run left xa_staging as it was
    remove_dataset(store, settings, "xa", drop_data=True)
    assert schemas(settings) == {"xa_staging": loaded["xa_staging"]}


def test_removing_a_datasets_data_drops_the_staging_schema_dlt_left_for_it(
    store, settings, acme, leadexec_api
):
    make_dataset(store, name="xb", update_method="merge")
    run(store, settings, leadexec_api, name="xb")
    # What dlt's merge left in warehouses loaded before leadferry applied loads itself.
    with duckdb.connect(str(settings.warehouse_path)) as connection:
        connection.execute("create schema xb_staging; create table xb_staging.leads (uid bigint)")
    remove_dataset(store, settings, "xb", drop_data=True)
    assert schemas(settings) == {}


def test_names_past_63_characters_are_refused_at_create(account):  # noqa: F811
    """PostgreSQL cuts longer names: the dataset's, and its merge key's, are refused on both."""
    long = "a" * 64
    line = fails(2, "datasets", "create", long, "--account", "acme", "--report", "leads",
                 "--param", "lid=1")  # fmt: skip
    assert line.startswith(f"error: invalid dataset name {long!r}: ")
    line = fails(2, "datasets", "create", "acme_leads", "--account", "acme", "--report", "leads",
                 "--param", "lid=1", "--update", "merge", "--merge-key", f"uid,{long}")  # fmt: skip
    assert line == (
        f"error: merge key column {long[:24]}... of report leads is longer than the 63 "
        "characters a warehouse name may have: choose a shorter one"
    )
