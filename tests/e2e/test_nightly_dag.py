"""The nightly DAG run through Airflow (``airflow dags test`` with the real SparkSubmitOperator and
spark-submit) for two generated days, then a rerun of both days that must change nothing."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include import delta_io, tables
from tests.e2e.conftest import DAYS, K, setlist

pytestmark = pytest.mark.e2e

AUDIT_COLUMNS = {"_ingested_at", "run_id", "generated_at", "trained_at", "fit_seconds", "validated_at"}


def read(spark, table: tables.Table, lake: str):
    return spark.read.format("delta").load(table.path(lake))


def snapshot(spark, lake: str) -> dict[str, list]:
    out = {}
    for table in tables.ALL_TABLES:
        if not delta_io.exists(spark, table, lake):  # ops.run_log exists only after a failure
            continue
        df = read(spark, table, lake)
        out[table.sql_name] = df.select(*[c for c in df.columns if c not in AUDIT_COLUMNS]).collect()
    return out


def test_every_active_user_gets_k_unplayed_tracks_with_raw_ids(spark, lake):
    assert read(spark, tables.GOLD_RECOMMENDATIONS, lake).where(F.col("run_date") == DAYS[0]).count() == 0
    for day in DAYS[1:]:
        recs = read(spark, tables.GOLD_RECOMMENDATIONS, lake).where(F.col("run_date") == day).collect()
        aff = read(spark, tables.GOLD_AFFINITY, lake).where(F.col("as_of_date") == day).collect()
        active = {r["user_id"] for r in aff}
        seen = {(r["user_id"], r["track_id"]) for r in aff}
        by_user: dict[str, list[int]] = {}
        for r in recs:
            assert (r["user_id"], r["track_id"]) not in seen
            assert r["user_id"].startswith("user_") and r["track_id"].startswith("trk_")
            assert r["source"] in ("als", "popular")
            by_user.setdefault(r["user_id"], []).append(r["rank"])
        assert set(by_user) == active and len(active) > 30
        assert all(sorted(ranks) == list(range(1, K + 1)) for ranks in by_user.values())
        assert any(r["source"] == "als" and r["model_version"] for r in recs)


def test_bad_lines_are_kept_in_bronze_and_quarantined_in_silver(spark, lake):
    bronze = read(spark, tables.BRONZE_INTERACTIONS, lake).where("_run_date = '2026-11-02'")
    assert bronze.where(F.col("event_id").isin("ev_bad_1", "ev_bad_2")).count() == 2
    q = read(spark, tables.SILVER_QUARANTINE, lake).where("run_date = '2026-11-02'").collect()
    reasons = sorted(r["reasons"].split(",")[0] for r in q)
    assert reasons == ["malformed_row", "played_at_invalid"]
    assert all(r["source_row"] and r["source_file"].endswith(".csv") for r in q)
    counts = read(spark, tables.OPS_LAYER_COUNTS, lake).where("source = 'interactions'").collect()
    for c in counts:
        assert c["rows_in"] == c["rows_out"] + c["quarantined"] + c["duplicates"]
    day2 = next(c for c in counts if c["run_date"] == "2026-11-02")
    assert day2["quarantined"] == 2 and day2["duplicates"] > 0
    assert read(spark, tables.SILVER_INTERACTIONS, lake).groupBy("event_id").count().where("count > 1").count() == 0


def test_keys_are_stable_across_days(spark, lake):
    dim = read(spark, tables.SILVER_DIM_USER, lake)
    assert dim.count() == dim.select("user_id").distinct().count() == dim.select("user_key").distinct().count()
    day1_keys = {
        (r["user_id"], r["user_key"])
        for r in read(spark, tables.SILVER_INTERACTIONS, lake)
        .where("run_date = '2026-11-01'")
        .select("user_id", "user_key")
        .distinct()
        .collect()
    }
    assert day1_keys <= {(r["user_id"], r["user_key"]) for r in dim.collect()}


def test_sql_command_reads_gold_tables_by_name(lake):
    result = setlist(
        "sql",
        "--lake",
        lake,
        "--format",
        "csv",
        "SELECT run_date, count(*) AS n FROM gold.recommendations GROUP BY run_date ORDER BY run_date",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "run_date,n" and [line.split(",")[0] for line in lines[1:]] == [DAYS[1]]
    bad = setlist("sql", "--lake", lake, "SELECT * FROM gold.no_such_table")
    assert bad.returncode == 2 and "no_such_table" in bad.stderr and "Traceback" not in bad.stderr


def test_rerunning_both_dates_changes_nothing(spark, lake):
    before = snapshot(spark, lake)
    result = setlist("run", "--lake", lake, "--date", *DAYS, "--train", "auto")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # auto asks Airflow: the first day already has a newer run, so only the second day retrains.
    assert f"newest_day {DAYS[0]}: skip training (train=auto: a run for {DAYS[1]} exists" in result.stdout
    assert f"newest_day {DAYS[1]}: train (train=auto: no newer run)" in result.stdout
    after = snapshot(spark, lake)
    assert before.keys() == after.keys()
    for name in before:
        assertDataFrameEqual(after[name], before[name], checkRowOrder=False), name
