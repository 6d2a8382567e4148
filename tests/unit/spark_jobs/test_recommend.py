"""recommend: K unplayed tracks per user from ALS, popular and content candidates; the champion kept."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyspark.ml.recommendation import ALS
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include.core import schemas, tables
from include.core.config import load_settings
from include.lake import delta_io
from include.lake.jobs import JobContext
from include.models import als, topk
from include.models.model_version import model_version
from spark_jobs import build_gold as gold
from spark_jobs import recommend as rec
from tests.unit.conftest import record

pytestmark = pytest.mark.unit

T = dt.datetime(2026, 11, 20, 10)
EVENTS_SCHEMA = (
    "user_key int, track_key int, user_id string, track_id string, played_at timestamp, ms_played long,"
    " skipped boolean, liked boolean, rating double, run_date string"
)


FEATURES = ("tempo", *schemas.AUDIO_FEATURES_UNIT, "loudness")
CATALOG = "track_key int, track_id string, genre string, " + ", ".join(f"{c} double" for c in FEATURES)


def test_recommend_keeps_the_champions_lists_when_the_model_is_not_promoted(spark, tmp_path, capsys):
    settings = load_settings(env={}, lake=str(tmp_path))
    day = "2026-11-04"
    record(spark, settings.lake, model_version(settings, day), day, 0.1, False)
    rec.recommend(spark, JobContext("recommend", dt.date.fromisoformat(day), "r", settings))
    assert "not promoted, gold.recommendations unchanged: test" in capsys.readouterr().out
    assert not delta_io.exists(spark, tables.GOLD_RECOMMENDATIONS, settings.lake)


def _snapshots(spark):
    """5 users x 8 tracks: user u_i played tracks i..i+2 (a sliding window, so neighbours share taste)."""
    rows = [(u, t, f"u{u}", f"t{t}", 1.0) for u in range(5) for t in range(u, u + 3)]
    aff = spark.createDataFrame(rows, "user_key int, track_key int, user_id string, track_id string, strength double")
    pairs = aff.select("user_key", "track_key", "track_id", F.lit(1).alias("plays"), F.lit(1).alias("full_plays"))
    pop = gold.popularity(pairs, "2026-11-20").unionByName(
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


def track(key: int, genre: str, level: float) -> tuple:
    """A catalog row with every feature at ``level`` of its range (tempo 250 * level, loudness -60 + 65 * level)."""
    return (key, f"t{key}", genre, 250 * level, *[level] * len(schemas.AUDIO_FEATURES_UNIT), -60 + 65 * level)


def lake_frames(spark):
    """Users 0-3 play rock tracks 0-3 (sliding pairs), user 4 plays jazz tracks 4-5, user 0 also jazz 4 and 6
    (so 6 is the least popular track); track 9 is unplayed and sounds exactly like track 3; track 8 (jazz)
    is unplayed and has no features."""
    plays = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (3, 0), (4, 4), (4, 5), (0, 4), (0, 6)]
    aff = spark.createDataFrame(
        [(u, t, f"u{u}", f"t{t}", 1.0, 1) for u, t in plays],
        "user_key int, track_key int, user_id string, track_id string, strength double, plays long",
    )
    pop = gold.popularity(
        aff.select("track_key", "track_id", F.lit(1).alias("plays"), F.lit(1).alias("full_plays")), "d"
    )
    levels = {0: 0.1, 1: 0.2, 2: 0.5, 3: 0.9, 4: 0.3, 5: 0.35, 6: 0.4}
    rows = [track(t, "jazz" if t in (4, 5, 6) else "rock", lv) for t, lv in levels.items()]
    rows.append(track(9, "rock", 0.9))
    rows.append((8, "t8", "jazz", *[None] * len(FEATURES)))
    return aff, pop, spark.createDataFrame(rows, CATALOG)


def test_content_neighbours_are_the_nearest_played_tracks(spark):
    _, _, catalog = lake_frames(spark)
    new = catalog.where("track_key = 9")
    played = catalog.where("track_key < 8")
    got = rec.content_neighbours(new, played, n=2).select("track_key", "neighbour_key", F.round("similarity", 6))
    # t3 is identical (distance 0); t2 is 0.4 away on each of the nine scaled features.
    assertDataFrameEqual(got, [(9, 3, 1.0), (9, 2, round(1 / (1 + (9 * 0.4**2) ** 0.5), 6))])


def test_unplayed_track_reaches_users_through_its_neighbour(spark):
    aff, pop, catalog = lake_frames(spark)
    fitted = ALS(
        userCol="user_key", itemCol="track_key", ratingCol="strength", implicitPrefs=True, rank=3, maxIter=5, seed=1
    ).fit(aff)
    model = als.Factors.of(fitted)
    k = 3
    recs = rec.transform(aff, pop, model, k, "v1", "run", "d", catalog=catalog).collect()
    content = [r for r in recs if r["source"] == "content"]
    assert content and {r["track_id"] for r in content} == {"t9"}  # t8 has no features: never content
    # A neighbour counts when the user's model score for it is at least the user's k-th best unplayed score:
    # the expected score is the best (prediction x similarity) over t9's five nearest played tracks that do.
    neighbours = {
        r["neighbour_key"]: r["similarity"]
        for r in rec.content_neighbours(catalog.where("track_key = 9"), catalog.where("track_key < 8"), 5).collect()
    }
    users = aff.select("user_key", "user_id").distinct()
    tracks = aff.select("track_key").distinct()
    predicted = model.predict(users.crossJoin(tracks)).collect()
    played = {(r["user_id"], r["track_id"]) for r in aff.collect()}
    for r in content:
        mine = {p["track_key"]: p["prediction"] for p in predicted if p["user_id"] == r["user_id"]}
        unplayed = sorted((s for t, s in mine.items() if (r["user_id"], f"t{t}") not in played), reverse=True)
        kth = unplayed[k - 1] if len(unplayed) >= k else float("-inf")
        best = max(mine[n] * sim for n, sim in neighbours.items() if n in mine and mine[n] >= kth)
        assert r["score"] == pytest.approx(best, rel=1e-5)
    assert not [r for r in recs if (r["user_id"], r["track_id"]) in played]
    assert all(sorted(r["rank"] for r in recs if r["user_id"] == u) == [1, 2, 3] for u in {r["user_id"] for r in recs})


def test_popular_fallback_prefers_the_users_genres(spark):
    aff, pop, catalog = lake_frames(spark)
    genres = catalog.select("track_key", "genre")
    # user 0 played two rock and two jazz tracks: the tie goes to the first genre by name
    assertDataFrameEqual(
        rec.top_genres(aff, genres, n=1), [(0, "jazz"), (1, "rock"), (2, "rock"), (3, "rock"), (4, "jazz")]
    )

    def top(recs, user):
        return [r["track_id"] for r in recs.where(f"user_id = '{user}'").orderBy("rank").collect()]

    with_genres = rec.transform(aff, pop, None, 2, None, "run", "d", catalog=catalog)
    plain = rec.transform(aff, pop, None, 2, None, "run", "d")
    # u4 likes jazz: the one jazz track it has not played (the least popular overall) comes first
    assert top(with_genres, "u4") == ["t6", "t0"]
    assert top(plain, "u4") == ["t0", "t1"]
    assert top(with_genres, "u3") == top(plain, "u3") == ["t1", "t2"]  # rock fans: the popular rock tracks


def test_new_tracks_take_at_most_the_content_slots_of_a_list():
    # new tracks 20-22 sound like track 3, 23 like track 4; the user's eligible neighbours 3 and 4 score 2.0 and 1.0
    catalog = topk.Catalog(np.array([3, 4]), np.array([[1.0], [1.0]], np.float32))
    content = topk.Content.of(
        catalog, np.array([20, 21, 22, 23]), np.array([3, 3, 3, 4]), np.array([0.9, 0.8, 0.7, 0.99]), slots=2
    )
    tracks, scores = content.best(np.array([0, 1]), np.array([2.0, 1.0]))
    assert list(tracks) == [20, 21] and list(scores) == pytest.approx([1.8, 1.6])
