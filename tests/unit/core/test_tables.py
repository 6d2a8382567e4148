"""Table declarations: one schema per table, its DDL derived from it, stamped columns part of the schema."""

from __future__ import annotations

import pytest

from include.core import tables

pytestmark = pytest.mark.unit

DECLARED = [t for t in tables.ALL_TABLES if t.schema is not None]


def test_tables_have_unique_names_and_locations():
    assert len({t.sql_name for t in tables.ALL_TABLES}) == len(tables.ALL_TABLES)
    assert len({t.path("/lake") for t in tables.ALL_TABLES}) == len(tables.ALL_TABLES)


@pytest.mark.parametrize("table", DECLARED, ids=lambda t: t.sql_name)
def test_ddl_is_the_declared_schema(spark, table):
    parsed = spark.createDataFrame([], table.ddl).schema
    assert [(f.name, f.dataType) for f in parsed.fields] == [(f.name, f.dataType) for f in table.declared.fields]
    assert table.partition_by is None or table.partition_by in table.columns
    assert table.cluster_by is None or table.cluster_by in table.columns
    assert table.stamped is None or table.stamped in table.columns


def test_a_table_without_a_schema_says_so():
    with pytest.raises(LookupError, match=r"gold\.track_popularity declares no schema"):
        _ = tables.GOLD_POPULARITY.ddl


def test_unknown_tables_are_the_lake_names_a_query_reads_that_no_table_has():
    query = """SELECT * FROM gold.recommendations gold JOIN silver.no_such s ON gold.user_id = s.user_id
               LEFT JOIN GOLD.Missing m USING (track_id) WHERE gold.rank <= 10 AND x IN (SELECT 1 FROM other.t)"""
    assert tables.unknown_tables(query) == ["silver.no_such", "GOLD.Missing"]
    assert tables.unknown_tables("select * from ops.model_runs ops where ops.kind = 'nightly'") == []
