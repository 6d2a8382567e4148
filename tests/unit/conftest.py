"""Fixtures of the unit tier: a small lake of gold tables written by Spark, read back by other engines."""

from __future__ import annotations

import datetime as dt

import pytest

from include import delta_io, schemas, tables

NOW = dt.datetime(2026, 11, 3, 4, 0)


def recs(spark, run_date: str, rows: list[tuple[str, str, int, float]]):
    data = [(u, t, r, s, "als", f"m-{run_date}", "run-1", run_date, NOW) for u, t, r, s in rows]
    return spark.createDataFrame(data, schemas.RECOMMENDATIONS)


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
    spark.createDataFrame(catalog, schemas.SILVER_TRACKS).write.format("delta").save(tables.SILVER_TRACKS.path(root))
    return root
