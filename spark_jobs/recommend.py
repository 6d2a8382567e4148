"""ALS model + gold snapshots -> ``gold.recommendations``: top K unplayed tracks per active user.

Reads the model's promotion decision in ``ops.model_runs`` (a model that was not promoted writes nothing:
the previous run's lists stay the newest), the model ``<lake>/models/als/<model_version>``,
``gold.user_track_affinity`` as of ``<run_date>`` and ``gold.track_popularity`` (``as_of_date = <run_date>``), and
``silver.tracks`` with ``silver.dim_track`` for the cold-start candidates. Writes ``gold.recommendations`` for
``run_date = <run_date>`` (replaceWhere), clustered by user for single-user lookups. Users without
factors, or with fewer than K unplayed ALS candidates, are filled from the most popular tracks they have
not played (``source = 'popular'``), those of their two most played genres first; tracks nobody has played
yet reach users through their nearest played tracks by audio features (``source = 'content'``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from include.core import schemas, tables
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake import delta_io, gold_state, jobs
from include.lake.frames import first_n
from include.lake.landing import path_exists
from include.lake.spark import cached, fit_to_input
from include.models import als, topk
from include.models.model_version import model_version


def top_genres(affinity: DataFrame, genres: DataFrame, n: int = 2) -> DataFrame:
    """Each user's ``n`` most played genres (user_key, genre): what their popular fallback is drawn from."""
    plays = affinity.join(genres, TRACK_KEY).where(F.col("genre").isNotNull() & (F.col("genre") != ""))
    per_genre = plays.groupBy(USER_KEY, "genre").agg(F.sum("plays").alias("p"))
    return first_n(per_genre, USER_KEY, [F.desc("p"), F.asc("genre")], n).select(USER_KEY, "genre")


def popular_lists(popularity: DataFrame, genres: DataFrame | None) -> tuple[topk.Popular, dict[str, topk.Popular]]:
    """Tracks by popularity (``score``: the track's share of the top track's listeners, so popular rows are
    comparable across runs), overall and within each genre."""
    frame = popularity.select(TRACK_KEY, "listeners")
    if genres is not None:
        frame = frame.join(genres, TRACK_KEY, "left")
    table = frame.toArrow()
    keys = table.column(TRACK_KEY).to_numpy(zero_copy_only=False).astype(np.int64)
    listeners = table.column("listeners").to_numpy(zero_copy_only=False).astype(np.float64)
    share = listeners / listeners.max() if len(listeners) else listeners
    by_genre: dict[str, topk.Popular] = {}
    if genres is not None:
        names = np.array(table.column("genre").to_pylist(), dtype=object)
        for genre in {g for g in names if g}:
            mine = names == genre
            by_genre[genre] = topk.Popular.ordered(keys[mine], share[mine])
    return topk.Popular.ordered(keys, share), by_genre


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
    """For each unplayed track, its ``n`` nearest played tracks by audio features (ties: the smaller key):
    (track_key, neighbour_key, similarity = 1 / (1 + Euclidean distance)), by blocked matrix products."""
    played = played_tracks.select(TRACK_KEY, feature_vector(played_tracks).alias("features"))
    keys, features = topk.collect_matrix(played, key=TRACK_KEY)
    new = new_tracks.select(TRACK_KEY, feature_vector(new_tracks).alias("features"))
    if not len(keys):
        return new.limit(0).select(TRACK_KEY, F.col(TRACK_KEY).alias("neighbour_key"), F.lit(0.0).alias("similarity"))
    return new.mapInArrow(topk.Neighbours.of(keys, features, n), topk.NEIGHBOURS_OUTPUT)


CONTENT_SLOTS = 2  # new tracks per user at most, so sound-alikes of a user's favourites do not fill the list
NEIGHBOURS = 5


def content_index(catalog: DataFrame, popularity: DataFrame, model_catalog: topk.Catalog) -> topk.Content:
    """New tracks (in the catalog with audio features, played by nobody yet) by their nearest played tracks."""
    with_features = catalog.where(F.col("tempo").isNotNull())
    played = popularity.select(TRACK_KEY)
    new = with_features.join(played, TRACK_KEY, "left_anti")
    pairs = content_neighbours(new, with_features.join(played, TRACK_KEY), NEIGHBOURS).toArrow()
    return topk.Content.of(
        model_catalog,
        pairs.column(TRACK_KEY).to_numpy(zero_copy_only=False).astype(np.int64),
        pairs.column("neighbour_key").to_numpy(zero_copy_only=False).astype(np.int64),
        pairs.column("similarity").to_numpy(zero_copy_only=False),
        CONTENT_SLOTS,
    )


def transform(
    affinity: DataFrame,
    popularity: DataFrame,
    model: als.Factors | None,
    k: int,
    version: str | None,
    run_id: str,
    run_date: str,
    catalog: DataFrame | None = None,
) -> DataFrame:
    """Top-K recommendations for every user in ``affinity`` with raw string ids, in the published schema.

    Model rows first: the model's best tracks the user has not played, with up to ``CONTENT_SLOTS`` tracks
    nobody has played yet, scored as a neighbour's score times their similarity when the neighbour scores at
    least the user's K-th recommendation (``source = 'content'``); then popular rows until there are K, the
    popular tracks of the user's two most played genres first (``catalog``: track_key, track_id, genre and
    audio features, i.e. ``silver.tracks`` with its keys)."""
    users = affinity.select(USER_KEY, "user_id").distinct()
    genres = catalog.select(TRACK_KEY, "genre") if catalog is not None else None
    popular, by_genre = popular_lists(popularity, genres)
    factors = model.users if model is not None else None
    rows = topk.user_rows(users, affinity, factors)
    if genres is not None:
        user_genres = top_genres(affinity, genres).groupBy(USER_KEY).agg(F.collect_list("genre").alias("genres"))
        rows = rows.join(user_genres, USER_KEY, "left")
    else:
        rows = rows.withColumn("genres", F.lit(None).cast("array<string>"))
    model_catalog = content = None
    if model is not None:
        model_catalog = topk.Catalog(*topk.collect_matrix(model.items))
        if catalog is not None:
            content = content_index(catalog, popularity, model_catalog)
    ranked = topk.rank(rows, topk.Ranker(k, model_catalog, popular, by_genre, content))
    track_ids = (catalog if catalog is not None else popularity).select(TRACK_KEY, "track_id")
    return (
        ranked.join(users, USER_KEY)
        .join(track_ids, TRACK_KEY)
        .select(
            "user_id",
            "track_id",
            F.col("rank").cast("int"),
            F.col("score").cast("double"),
            # a UDF's declared string is written to Delta as "string collate UTF8_BINARY", which delta-rs
            # readers cannot parse; the cast gives the plain type
            F.col("source").cast("string"),
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
    keys = delta_io.read(spark, tables.SILVER_DIM_TRACK, lake).select("track_id", TRACK_KEY)
    return delta_io.read(spark, tables.SILVER_TRACKS, lake).join(keys, "track_id")


def recommend(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from expectations import suites
    from include.models import model_runs
    from include.quality import runner as quality

    lake, ds, settings = ctx.settings.lake, ctx.ds, ctx.settings
    version: str | None = model_version(settings, ds)
    decision = model_runs.decision_of(spark, lake, str(version))
    if decision is not None and not decision.promoted:
        ctx.log(f"not promoted, gold.recommendations unchanged: {decision.reason}")
        return
    affinity = gold_state.as_of(spark, lake, ds, settings.als_value("alpha"))
    fit_to_input(spark, affinity.count(), settings)
    affinity = cached(affinity)
    popularity = cached(delta_io.read_partition(spark, tables.GOLD_POPULARITY, lake, ds))
    model = None
    path = tables.model_path(lake, str(version))
    if path_exists(spark, path):
        model = als.Factors.load(path)
    else:
        ctx.log(f"no model at {path}: popularity fallback for every user")
        version = None
    catalog = catalog_with_keys(spark, lake)
    recs = cached(transform(affinity, popularity, model, settings.top_k, version, ctx.run_id, ds, catalog=catalog))
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
