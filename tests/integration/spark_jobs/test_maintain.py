"""The maintenance job on a small lake: OPTIMIZE compacts recent partitions, VACUUM keeps time travel."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from include.core import tables
from include.lake import delta_io
from include.serving import lookup
from spark_jobs import maintain

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 3, 4, 0)


def _recs(spark, run_date: str):
    rows = [
        (f"u{u:03d}", f"t{(u * 7 + r) % 50}", r, 1.0 / r, "als", "m1", "run-1", run_date, NOW)
        for u in range(200)
        for r in range(1, 11)
    ]
    return spark.createDataFrame(rows, tables.GOLD_RECOMMENDATIONS.schema).repartition(4)  # four unsorted small files


def _files(spark, lake: str, run_date: str) -> int:
    table = delta_io.read_partition(spark, tables.GOLD_RECOMMENDATIONS, lake, run_date)
    return len(table.inputFiles())


def test_maintain_compacts_recent_partitions_and_keeps_time_travel(spark, tmp_path):
    lake = str(tmp_path)
    for day in ("2026-10-01", "2026-11-02"):
        delta_io.overwrite_partition(_recs(spark, day), tables.GOLD_RECOMMENDATIONS, lake, day)
    before = delta_io.read(spark, tables.GOLD_RECOMMENDATIONS, lake).collect()
    assert _files(spark, lake, "2026-11-02") == 4

    code = maintain.main(["--run-date", "2026-11-03", "--lake", lake])
    assert code == 0
    assertDataFrameEqual(delta_io.read(spark, tables.GOLD_RECOMMENDATIONS, lake), before)
    assert _files(spark, lake, "2026-11-02") == 1  # inside the 7-day window: compacted, Z-ordered by user
    assert _files(spark, lake, "2026-10-01") == 4  # older partitions were left alone
    history = spark.sql(f"DESCRIBE HISTORY delta.`{tables.GOLD_RECOMMENDATIONS.path(lake)}`").collect()
    assert "OPTIMIZE" in [h["operation"] for h in history]
    first = spark.read.format("delta").option("versionAsOf", 0).load(tables.GOLD_RECOMMENDATIONS.path(lake))
    assert first.count() == 2000  # VACUUM kept the files time travel needs

    reader = lookup.RecommendationReader(lake)
    assert [r["rank"] for r in reader.get("u123", k=3)] == [1, 2, 3]
    lows = [g.low for g in reader._groups]
    assert lows == sorted(lows)  # the compacted file is ordered by user

    assert maintain.main(["--run-date", "2026-11-03", "--lake", lake]) == 0  # a rerun changes no rows
    assertDataFrameEqual(delta_io.read(spark, tables.GOLD_RECOMMENDATIONS, lake), before)
