from __future__ import annotations

import datetime as dt
import math

import pytest
from pyspark.ml.recommendation import ALS
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include import als
from spark_jobs import build_gold as gold
from spark_jobs import recommend as rec

pytestmark = pytest.mark.unit

T = dt.datetime(2026, 11, 20, 10)
EVENTS_SCHEMA = (
    "user_key int, track_key int, user_id string, track_id string, played_at timestamp, ms_played long,"
    " skipped boolean, liked boolean, rating double, run_date string"
)


def events(spark):
    return spark.createDataFrame(
        [
            (1, 10, "u1", "t10", T, 100, False, False, 3.0, "2026-11-19"),
            (1, 10, "u1", "t10", T + dt.timedelta(hours=1), 50, True, True, None, "2026-11-20"),
            (1, 10, "u1", "t10", T + dt.timedelta(hours=2), 70, False, False, 4.5, "2026-11-20"),
            (2, 10, "u2", "t10", T, 10, False, False, None, "2026-11-20"),
            (2, 11, "u2", "t11", T, 10, True, False, None, "2026-11-20"),
        ],
        EVENTS_SCHEMA,
    )


def test_affinity_aggregates_plays_latest_rating_and_confidence(spark):
    aff = gold.affinity(events(spark), "2026-11-20", alpha=2.0)
    got = aff.select(
        "user_id", "track_id", "plays", "full_plays", "total_ms_played", "latest_rating", "liked", "confidence"
    ).orderBy("user_id", "track_id")
    assertDataFrameEqual(
        got,
        [
            ("u1", "t10", 3, 2, 220, 4.5, True, 1 + 2 * math.log1p(2)),
            ("u2", "t10", 1, 1, 10, None, False, 1 + 2 * math.log1p(1)),
            ("u2", "t11", 1, 0, 10, None, False, 1.0),
        ],
    )


def test_popularity_ranks_by_listeners_then_full_plays(spark):
    pop = gold.popularity(events(spark), "2026-11-20").select("track_id", "listeners", "popularity_rank")
    assertDataFrameEqual(pop, [("t10", 2, 1), ("t11", 1, 2)])


def test_daily_metrics_counts_one_day_and_its_rating_distribution(spark):
    day = events(spark).where("run_date = '2026-11-20'")
    q = spark.createDataFrame([("x",)], "reasons string")
    m = gold.daily_metrics(day, q, "2026-11-20").first()
    assert (m["events"], m["unique_users"], m["unique_tracks"], m["ratings"], m["quarantined_rows"]) == (4, 2, 2, 1, 1)
    assert m["rating_distribution"]["4.5"] == 1 and m["rating_distribution"]["3.0"] == 0


def _snapshots(spark):
    """5 users x 8 tracks: user u_i played tracks i..i+2 (a sliding window, so neighbours share taste)."""
    rows = [(u, t, f"u{u}", f"t{t}", 1.0) for u in range(5) for t in range(u, u + 3)]
    aff = spark.createDataFrame(rows, "user_key int, track_key int, user_id string, track_id string, strength double")
    pop = gold.popularity(
        aff.select("user_key", "track_key", "track_id", F.lit(False).alias("skipped")), "2026-11-20"
    ).unionByName(
        spark.createDataFrame(
            [(7, "t7", 0, 0, 0, 99, "2026-11-20")],
            "track_key int, track_id string, plays long,"
            " full_plays long, listeners long, popularity_rank int, as_of_date string",
        )
    )
    return aff, pop


def _check(recs, aff, k):
    seen = {(r["user_id"], r["track_id"]) for r in aff.collect()}
    by_user: dict[str, list[int]] = {}
    for r in recs.collect():
        assert (r["user_id"], r["track_id"]) not in seen
        by_user.setdefault(r["user_id"], []).append(r["rank"])
    assert sorted(by_user) == [f"u{u}" for u in range(5)]
    for ranks in by_user.values():
        assert sorted(ranks) == list(range(1, k + 1))


def test_popularity_fallback_without_a_model(spark):
    aff, pop = _snapshots(spark)
    recs = rec.transform(aff, pop, None, 3, None, "run-1", "2026-11-20")
    _check(recs, aff, 3)
    assert {r["source"] for r in recs.collect()} == {"popular"}
    top = recs.where("user_id = 'u4'").orderBy("rank").select("track_id").collect()
    assert [r[0] for r in top] == ["t2", "t3", "t1"]  # most listened tracks u4 has not played


def test_als_recommendations_exclude_seen_and_fill_to_k(spark):
    aff, pop = _snapshots(spark)
    model = ALS(
        userCol="user_key",
        itemCol="track_key",
        ratingCol="strength",
        implicitPrefs=True,
        rank=3,
        maxIter=5,
        seed=1,
        numUserBlocks=1,
        numItemBlocks=1,
    ).fit(aff)
    recs = rec.transform(aff, pop, als.Factors.of(model), 4, "v1", "run-1", "2026-11-20")
    _check(recs, aff, 4)
    rows = recs.collect()
    assert {r["source"] for r in rows} <= {"als", "popular"} and any(r["source"] == "als" for r in rows)
    assert all(r["model_version"] == "v1" and r["run_date"] == "2026-11-20" for r in rows)
    for user in {r["user_id"] for r in rows}:
        ranked = sorted((r for r in rows if r["user_id"] == user), key=lambda r: r["rank"])
        sources = [r["source"] for r in ranked]
        assert sources == sorted(sources)  # every ALS row ranks above every popular row
