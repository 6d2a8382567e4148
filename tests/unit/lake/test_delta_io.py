"""delta_io: scoped partition overwrites and MERGEs that commit only what changed."""

from __future__ import annotations
import pytest
from pyspark.testing import assertDataFrameEqual
from include.core import tables
from include.core.tables import ALL_TABLES, Table
from include.lake import delta_io

pytestmark = pytest.mark.unit
SCHEMA = "track_id string, title string, run_date string"
TRACKS = Table("silver", "tracks_test")
PARTS = Table("silver", "parts_test", partition_by="run_date")


def version(spark, table: Table, lake: str) -> int:
    return delta_io.version(spark, table, lake)


def test_merge_commits_only_new_or_changed_rows_and_never_rolls_back(spark, tmp_path):
    lake = str(tmp_path)
    day1 = spark.createDataFrame([("t1", "A", "2026-11-01"), ("t2", "B", "2026-11-01")], SCHEMA)
    assert delta_io.merge(day1, TRACKS, lake, ["track_id"], newer_than="run_date") == 2

    # The same catalog landing again the next day: nothing new, nothing committed.
    same = spark.createDataFrame([("t1", "A", "2026-11-02"), ("t2", "B", "2026-11-02")], SCHEMA)
    before = version(spark, TRACKS, lake)
    assert delta_io.merge(same, TRACKS, lake, ["track_id"], newer_than="run_date") == 0
    assert version(spark, TRACKS, lake) == before

    changed = spark.createDataFrame([("t1", "A2", "2026-11-03"), ("t3", "C", "2026-11-03")], SCHEMA)
    assert delta_io.merge(changed, TRACKS, lake, ["track_id"], newer_than="run_date") == 2
    # A backfill of an older day must not roll t1 back to its old title.
    old = spark.createDataFrame([("t1", "A", "2026-11-01")], SCHEMA)
    delta_io.merge(old, TRACKS, lake, ["track_id"], newer_than="run_date")
    expected = spark.createDataFrame(
        [("t1", "A2", "2026-11-03"), ("t2", "B", "2026-11-01"), ("t3", "C", "2026-11-03")], SCHEMA
    )
    assertDataFrameEqual(delta_io.read(spark, TRACKS, lake), expected, checkRowOrder=False)


def test_insert_only_merge_keeps_existing_rows(spark, tmp_path):
    lake = str(tmp_path)
    dim = Table("silver", "dim_test")
    delta_io.merge(spark.createDataFrame([("u1", 1)], "user_id string, user_key int"), dim, lake, ["user_id"])
    again = spark.createDataFrame([("u1", 7), ("u2", 2)], "user_id string, user_key int")
    assert delta_io.merge(again, dim, lake, ["user_id"], update=False) == 1
    rows = sorted(tuple(r) for r in delta_io.read(spark, dim, lake).collect())
    assert rows == [("u1", 1), ("u2", 2)]


def test_merge_adds_a_column_the_table_does_not_have_yet(spark, tmp_path):
    lake = str(tmp_path)
    runs = Table("ops", "runs_test")
    delta_io.merge(spark.createDataFrame([("r1", 1.0)], "run_key string, value double"), runs, lake, ["run_key"])
    newer = spark.createDataFrame(
        [("r1", 1.0, "implicit"), ("r2", 2.0, "explicit")], "run_key string, value double, served string"
    )
    assert delta_io.merge(newer, runs, lake, ["run_key"]) == 2
    rows = sorted(tuple(r) for r in delta_io.read(spark, runs, lake).select("run_key", "value", "served").collect())
    assert rows == [("r1", 1.0, "implicit"), ("r2", 2.0, "explicit")]
    # Once the column is there, an unchanged row is not written again.
    assert delta_io.merge(newer, runs, lake, ["run_key"]) == 0


def test_overwrite_partition_replaces_one_date_only(spark, tmp_path):
    lake = str(tmp_path)
    first = spark.createDataFrame([("t1", "A", "2026-11-01"), ("t2", "B", "2026-11-02")], SCHEMA)
    delta_io.overwrite_partition(first.where("run_date = '2026-11-01'"), PARTS, lake, "2026-11-01")
    delta_io.overwrite_partition(first.where("run_date = '2026-11-02'"), PARTS, lake, "2026-11-02")
    redo = spark.createDataFrame([("t9", "Z", "2026-11-01")], SCHEMA)
    delta_io.overwrite_partition(redo, PARTS, lake, "2026-11-01")
    delta_io.overwrite_partition(redo, PARTS, lake, "2026-11-01")
    expected = spark.createDataFrame([("t9", "Z", "2026-11-01"), ("t2", "B", "2026-11-02")], SCHEMA)
    assertDataFrameEqual(delta_io.read(spark, PARTS, lake), expected, checkRowOrder=False)


def test_sql_registers_only_the_tables_a_query_names():
    names = [t.sql_name for t in tables.referenced_tables("SELECT * FROM gold.recommendations r JOIN silver.tracks")]
    assert sorted(names) == ["gold.recommendations", "silver.tracks"]
    # No exact table name: fall back to every table (SHOW TABLES, or a typo that should fail by name).
    assert tables.referenced_tables("SHOW TABLES IN gold") == list(ALL_TABLES)
    assert tables.referenced_tables("SELECT 1 FROM gold.recommendations_old") == list(ALL_TABLES)


CONFLICT = "[DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT] Transaction conflict detected. A concurrent WRITE added data"


def test_a_write_that_meets_another_writers_commit_is_written_again(monkeypatch):
    from pyspark.errors import AnalysisException

    monkeypatch.setattr(delta_io.time, "sleep", lambda _: None)
    calls: list[int] = []

    def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise AnalysisException(CONFLICT)
        return "committed"

    assert delta_io._committing(tables.SILVER_DIM_USER, write) == "committed" and len(calls) == 3


def test_a_writer_that_keeps_losing_says_so_in_one_line_and_other_errors_pass_through(monkeypatch):
    from pyspark.errors import AnalysisException

    monkeypatch.setattr(delta_io.time, "sleep", lambda _: None)

    def lose() -> None:
        raise AnalysisException(CONFLICT)

    with pytest.raises(delta_io.ConcurrentWriteError) as lost:
        delta_io._committing(tables.SILVER_DIM_USER, lose)
    assert str(lost.value).startswith(
        "silver.dim_user: another writer committed first 6 times in a row (DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT)"
    )
    assert "\n" not in str(lost.value)

    def broken() -> None:
        raise AnalysisException("[PATH_NOT_FOUND] Path does not exist")

    with pytest.raises(AnalysisException, match="PATH_NOT_FOUND"):
        delta_io._committing(tables.SILVER_DIM_USER, broken)
