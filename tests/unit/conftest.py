"""Fixtures of the unit tier: a small lake of gold tables written by Spark, read back by other engines."""

from __future__ import annotations

import datetime as dt

import pytest

from include.core import schemas, tables
from include.lake import delta_io
from include.models import als, model_runs
from include.models.evaluation import Report
from spark_jobs import build_gold

NOW = dt.datetime(2026, 11, 3, 4, 0)


def recs(spark, run_date: str, rows: list[tuple[str, str, int, float]]):
    data = [(u, t, r, s, "als", f"m-{run_date}", "run-1", run_date, NOW) for u, t, r, s in rows]
    return spark.createDataFrame(data, tables.GOLD_RECOMMENDATIONS.schema)


def track(track_id: str, title: str, genre: str) -> tuple:
    """A silver.tracks row: audio features 0.5, tempo 120, loudness -8."""
    features = [0.5] * len(schemas.AUDIO_FEATURES_UNIT)
    return (track_id, title, f"artist of {title}", "album", genre, 2020, 180_000, 120.0, *features, -8.0, "2026-11-02")


@pytest.fixture()
def lake(spark, tmp_path) -> str:
    root = str(tmp_path)
    day1 = [("u1", "t9", 1, 0.1), ("u2", "t9", 1, 0.2)]
    day2 = [("u1", "t3", 2, 0.5), ("u1", "t1", 1, 0.9), ("u1", "t2", 3, 0.4), ("u2", "t1", 1, 0.8)]
    delta_io.overwrite_partition(recs(spark, "2026-11-01", day1), tables.GOLD_RECOMMENDATIONS, root, "2026-11-01")
    delta_io.overwrite_partition(recs(spark, "2026-11-02", day2), tables.GOLD_RECOMMENDATIONS, root, "2026-11-02")
    popularity = spark.createDataFrame(
        [(1, "t1", 8, 1, "2026-11-02"), (2, "t9", 4, 2, "2026-11-02"), (3, "t3", 2, 3, "2026-11-02")],
        "track_key int, track_id string, listeners long, popularity_rank int, as_of_date string",
    )
    delta_io.overwrite_partition(popularity, tables.GOLD_POPULARITY, root, "2026-11-02")
    catalog = [
        track("t1", "One", "rock"),
        track("t2", "Two", "jazz"),
        track("t3", "Three", "rock"),
        track("t9", "Nine", "pop"),
    ]
    spark.createDataFrame(catalog, tables.SILVER_TRACKS.schema).write.format("delta").save(
        tables.SILVER_TRACKS.path(root)
    )
    return root


def record(spark, lake, key, day, value, promoted, kind="nightly", mode="implicit"):
    report = Report(
        mode, 10, als.AlsParams(mode=mode), {"ndcg_at_10": value}, {"ndcg_at_10": 0.2}, {"ndcg_at_10": 0.1}, 50, 1.0, []
    )
    decision = model_runs.Decision(promoted, "test")
    values = model_runs.row(
        report,
        run_key=key,
        kind=kind,
        run_date=day,
        source="landing",
        decision=decision,
        versions={},
        code_version="c",
        duration_seconds=1.0,
        run_id="r",
    )
    model_runs.record(spark, lake, values)


def affinity_frame(spark, rows):
    aff = spark.createDataFrame(rows, "user_key int, track_key int, confidence double")
    dims = (
        spark.createDataFrame([(1,), (2,)], "user_key int"),
        spark.createDataFrame([(2,), (3,), (4,)], "track_key int"),
    )
    return build_gold.with_references(aff, *dims)
