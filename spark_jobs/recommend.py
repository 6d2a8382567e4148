"""ALS model + gold snapshots -> ``gold.recommendations``: top K unplayed tracks per active user.

Reads the model's promotion decision in ``ops.model_runs`` (a model that was not promoted writes nothing:
the previous run's lists stay the newest), the model ``<lake>/models/als/<model_version>``,
``gold.user_track_affinity`` and ``gold.track_popularity`` (``as_of_date = <run_date>``), and
``silver.tracks`` with ``silver.dim_track`` for the cold-start candidates. Writes ``gold.recommendations`` for
``run_date = <run_date>`` (replaceWhere), clustered by user for single-user lookups. Users without
factors, or with fewer than K unplayed ALS candidates, are filled from the most popular tracks they have
not played (``source = 'popular'``), those of their two most played genres first; tracks nobody has played
yet reach users through their nearest played tracks by audio features (``source = 'content'``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from include import delta_io, jobs, schemas, tables
from include.frames import first_n
from include.landing import path_exists
from include.model_version import model_version


def _als_first() -> Column:
    """Sort key that puts model rows (ALS, and content neighbours scored through ALS) before popularity rows."""
    return F.when(F.col("source").isin("als", "content"), 0).otherwise(1)


def exclude_seen(candidates: DataFrame, seen: DataFrame) -> DataFrame:
    return candidates.join(seen.select("user_key", "track_key"), ["user_key", "track_key"], "left_anti")


def top_k(candidates: DataFrame, k: int) -> DataFrame:
    """Rank 1..k per user: ALS before popular, then by score, ties by track_key (deterministic)."""
    return first_n(candidates, "user_key", [_als_first(), F.desc("score"), F.asc("track_key")], k, rank="rank")


def top_genres(affinity: DataFrame, genres: DataFrame, n: int = 2) -> DataFrame:
    """Each user's ``n`` most played genres (user_key, genre): what their popular fallback is drawn from."""
    plays = affinity.join(genres, "track_key").where(F.col("genre").isNotNull() & (F.col("genre") != ""))
    per_genre = plays.groupBy("user_key", "genre").agg(F.sum("plays").alias("p"))
    return first_n(per_genre, "user_key", [F.desc("p"), F.asc("genre")], n).select("user_key", "genre")


def popular_candidates(
    users: DataFrame,
    popularity: DataFrame,
    seen: DataFrame,
    n: int,
    user_genres: DataFrame | None = None,
    genres: DataFrame | None = None,
) -> DataFrame:
    """For each user, the ``n`` most popular tracks minus those the user played; with ``user_genres`` and
    the tracks' ``genres``, also the ``n`` most popular of each of the user's genres, ranked first.

    ``score`` is the track's share of listeners (plus 1 within the user's genres), so popular rows are
    comparable across runs and genre rows come before the rest.
    """
    total = popularity.agg(F.max("listeners").alias("m"))
    share = (F.col("listeners") / F.col("m")).alias("score")
    head = popularity.where(F.col("popularity_rank") <= n).crossJoin(total)
    pairs = users.select("user_key").crossJoin(head.select("track_key", share))
    if user_genres is not None and genres is not None:
        in_genre = popularity.join(genres, "track_key").crossJoin(total)
        genre_head = first_n(in_genre, "genre", ["popularity_rank"], n)
        genre_pairs = user_genres.join(genre_head.select("genre", "track_key", share), "genre").select(
            "user_key", "track_key", (F.col("score") + 1.0).alias("score")
        )
        pairs = genre_pairs.unionByName(pairs).groupBy("user_key", "track_key").agg(F.max("score").alias("score"))
    return exclude_seen(pairs, seen).withColumn("source", F.lit("popular"))


FEATURE_SCALE = {"tempo": 250.0, "loudness": 65.0}  # to about [0, 1] like the unit features
FEATURE_SHIFT = {"loudness": 60.0}


def feature_vector(tracks: DataFrame) -> Column:
    """The audio features on a common 0..1 scale, as an array (tracks without features give null)."""
    values = [
        (F.col(c) + FEATURE_SHIFT.get(c, 0.0)) / FEATURE_SCALE.get(c, 1.0)
        for c in ("tempo", *schemas.AUDIO_FEATURES_UNIT, "loudness")
    ]
    return F.array(*values)


def content_neighbours(new_tracks: DataFrame, played_tracks: DataFrame, n: int) -> DataFrame:
    """For each unplayed track, its ``n`` nearest played tracks by audio features:
    (track_key, neighbour_key, similarity = 1 / (1 + Euclidean distance))."""
    new = new_tracks.select("track_key", feature_vector(new_tracks).alias("f"))
    old = played_tracks.select(F.col("track_key").alias("neighbour_key"), feature_vector(played_tracks).alias("g"))
    squared = F.aggregate(F.zip_with("f", "g", lambda a, b: (a - b) * (a - b)), F.lit(0.0), lambda acc, x: acc + x)
    pairs = new.crossJoin(old).select("track_key", "neighbour_key", (1.0 / (1.0 + F.sqrt(squared))).alias("similarity"))
    return first_n(pairs, "track_key", [F.desc("similarity"), F.asc("neighbour_key")], n)


CONTENT_SLOTS = 2  # new tracks per user at most, so sound-alikes of a user's favourites do not fill the list


def content_candidates(scores: DataFrame, neighbours: DataFrame, slots: int = CONTENT_SLOTS) -> DataFrame:
    """New tracks for each user whose top ALS scores include one of their neighbours (played or not: a user
    who loves a track is a good audience for its sound-alike), scored as the neighbour's ALS score times
    their similarity (the best such neighbour); the user's best ``slots`` of them: ``source = 'content'``."""
    joined = scores.select("user_key", F.col("track_key").alias("neighbour_key"), "score").join(
        neighbours, "neighbour_key"
    )
    best = joined.groupBy("user_key", "track_key").agg(F.max(F.col("score") * F.col("similarity")).alias("score"))
    return first_n(best, "user_key", [F.desc("score"), F.asc("track_key")], slots).withColumn(
        "source", F.lit("content")
    )


def als_scores(model: object, users: DataFrame, n: int) -> DataFrame:
    """The model's top ``n`` (user_key, track_key, score) per user, played tracks included."""
    recs = model.recommendForUserSubset(users.select("user_key"), n)  # type: ignore[attr-defined]
    return recs.select("user_key", F.explode("recommendations").alias("r")).select(
        "user_key", F.col("r.track_key").alias("track_key"), F.col("r.rating").cast("double").alias("score")
    )


def als_candidates(scores: DataFrame, seen: DataFrame) -> DataFrame:
    """The model's scored tracks minus those the user already played."""
    return exclude_seen(scores, seen).withColumn("source", F.lit("als"))


NEIGHBOURS = 5


def transform(
    affinity: DataFrame,
    popularity: DataFrame,
    model: object | None,
    k: int,
    version: str | None,
    run_id: str,
    run_date: str,
    catalog: DataFrame | None = None,
) -> DataFrame:
    """Top-K recommendations for every user in ``affinity`` with raw string ids, in the published schema.

    ``catalog`` (track_key, track_id, genre and audio features: ``silver.tracks`` with its keys) adds the
    cold-start candidates: popular tracks of each user's genres, and catalog tracks nobody has played yet,
    through their nearest played tracks by audio features (``source = 'content'``)."""
    users = affinity.select("user_key", "user_id").distinct()
    seen = affinity.select("user_key", "track_key")
    max_seen_row = seen.groupBy("user_key").count().agg(F.max("count")).first()
    max_seen = int(max_seen_row[0] or 0) if max_seen_row else 0
    # Asking for K + the largest history guarantees K unplayed candidates whenever the catalog has them.
    n = k + max_seen
    user_genres = genres = None
    if catalog is not None:
        genres = catalog.select("track_key", "genre")
        user_genres = top_genres(affinity, genres)
    candidates = popular_candidates(users, popularity, seen, n, user_genres, genres)
    if model is not None:
        scores = als_scores(model, users, n)
        candidates = als_candidates(scores, seen).unionByName(candidates)
        if catalog is not None:
            with_features = catalog.where(F.col("tempo").isNotNull())
            new = with_features.join(popularity.select("track_key"), "track_key", "left_anti")
            played = with_features.join(popularity.select("track_key"), "track_key")
            content = content_candidates(scores, content_neighbours(new, played, NEIGHBOURS))
            candidates = content.unionByName(candidates)
    # A track may come from several sources: keep its model row.
    unique = first_n(candidates, ["user_key", "track_key"], [_als_first()], 1)
    ranked = top_k(unique, k)
    track_ids = popularity.select("track_key", "track_id")
    if catalog is not None:
        track_ids = catalog.select("track_key", "track_id")
    return (
        ranked.join(users, "user_key")
        .join(track_ids, "track_key")
        .select(
            "user_id",
            "track_id",
            F.col("rank").cast("int"),
            F.col("score").cast("double"),
            "source",
            F.lit(version).cast("string").alias("model_version"),
            F.lit(run_id).alias("run_id"),
            F.lit(run_date).alias("run_date"),
            F.current_timestamp().alias("generated_at"),
        )
    )


ROWS_PER_FILE = 2_000_000  # about 40 MB of Parquet per file


def clustered_by_user(recs: DataFrame, rows: int) -> DataFrame:
    """The lookup layout: each file holds a range of user ids, sorted by user then rank, so a one-user
    lookup is pruned to one file by Delta's min/max stats and to one row group by Parquet's."""
    files = max(1, -(-rows // ROWS_PER_FILE))
    column = str(tables.GOLD_RECOMMENDATIONS.cluster_by)
    return recs.repartitionByRange(files, column).sortWithinPartitions(column, "rank")


def checked_frames(recs: DataFrame, affinity: DataFrame) -> tuple[DataFrame, DataFrame]:
    """What the gold suites check: each row with ``played`` (the user played the track) and ``finite``
    (the score is a finite number), and one row per user with its row count, distinct and largest rank."""
    played = affinity.select("user_id", "track_id", F.lit(True).alias("played"))
    rows = (
        recs.join(played, ["user_id", "track_id"], "left")
        .withColumn("played", F.coalesce("played", F.lit(False)))
        .withColumn("finite", schemas.finite("score"))
    )
    per_user = recs.groupBy("user_id").agg(
        F.count("*").alias("rows"),
        F.countDistinct("rank").alias("distinct_ranks"),
        F.max("rank").alias("max_rank"),
    )
    return rows, per_user


def catalog_with_keys(spark: SparkSession, lake: str) -> DataFrame | None:
    """``silver.tracks`` with each track's key, or None before the catalog exists."""
    if not all(delta_io.exists(spark, t, lake) for t in (tables.SILVER_TRACKS, tables.SILVER_DIM_TRACK)):
        return None
    keys = delta_io.read(spark, tables.SILVER_DIM_TRACK, lake).select("track_id", "track_key")
    return delta_io.read(spark, tables.SILVER_TRACKS, lake).join(keys, "track_id")


def recommend(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from pyspark.ml.recommendation import ALSModel

    from expectations import suites
    from include import model_runs, quality

    lake, ds, settings = ctx.settings.lake, ctx.ds, ctx.settings
    version: str | None = model_version(settings, ds)
    decision = model_runs.decision_of(spark, lake, str(version))
    if decision is not None and not decision.promoted:
        ctx.log(f"not promoted, gold.recommendations unchanged: {decision.reason}")
        return
    affinity = delta_io.read_partition(spark, tables.GOLD_AFFINITY, lake, ds).cache()
    popularity = delta_io.read_partition(spark, tables.GOLD_POPULARITY, lake, ds).cache()
    model = None
    path = tables.model_path(lake, str(version))
    if path_exists(spark, path):
        model = ALSModel.load(path)
    else:
        ctx.log(f"no model at {path}: popularity fallback for every user")
        version = None
    catalog = catalog_with_keys(spark, lake)
    recs = transform(affinity, popularity, model, settings.top_k, version, ctx.run_id, ds, catalog=catalog).cache()
    n_recs = recs.count()
    rows, per_user = checked_frames(recs, affinity)
    results = quality.validate(rows, suites.gold_recommendations(settings.top_k, settings.dq_severity))
    results += quality.validate(per_user, suites.gold_recommendations_per_user(settings.top_k, settings.dq_severity))
    quality.record(spark, ctx, results)  # a failed check leaves the previous recommendations in place
    delta_io.overwrite_partition(clustered_by_user(recs, n_recs), tables.GOLD_RECOMMENDATIONS, lake, ds)
    by_source = {r["source"]: r["count"] for r in recs.groupBy("source").count().collect()}
    users = recs.select("user_id").distinct().count()
    ctx.log(f"{users} users -> {n_recs} recommendations (top {settings.top_k}) {by_source} model={version}")


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("recommend", __doc__ or "", recommend, argv, model_args=True)


if __name__ == "__main__":
    sys.exit(main())
