"""ALS model + gold snapshots -> ``gold.recommendations``: top K unplayed tracks per active user.

Reads the model ``<lake>/models/als/<model_version>``, ``gold.user_track_affinity`` and
``gold.track_popularity`` (``as_of_date = <run_date>``). Writes ``gold.recommendations`` for
``run_date = <run_date>`` (replaceWhere), clustered by user for single-user lookups. Users without
factors, or with fewer than K unplayed ALS candidates, are filled from the most popular tracks they have
not played (``source = 'popular'``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from include import delta_io, jobs, schemas, tables
from include.landing import path_exists
from include.model_version import model_version


def _als_first() -> Column:
    """Sort key that puts ALS rows before popularity rows."""
    return F.when(F.col("source") == "als", 0).otherwise(1)


def exclude_seen(candidates: DataFrame, seen: DataFrame) -> DataFrame:
    return candidates.join(seen.select("user_key", "track_key"), ["user_key", "track_key"], "left_anti")


def top_k(candidates: DataFrame, k: int) -> DataFrame:
    """Rank 1..k per user: ALS before popular, then by score, ties by track_key (deterministic)."""
    order = Window.partitionBy("user_key").orderBy(_als_first(), F.desc("score"), F.asc("track_key"))
    return candidates.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= k)


def popular_candidates(users: DataFrame, popularity: DataFrame, seen: DataFrame, n: int) -> DataFrame:
    """For each user, the ``n`` most popular tracks minus those the user played.

    ``score`` is the track's share of listeners, so popular rows are comparable across runs.
    """
    total = popularity.agg(F.max("listeners").alias("m"))
    head = popularity.where(F.col("popularity_rank") <= n).crossJoin(total)
    pairs = users.select("user_key").crossJoin(
        head.select("track_key", (F.col("listeners") / F.col("m")).alias("score"))
    )
    return exclude_seen(pairs, seen).withColumn("source", F.lit("popular"))


def als_candidates(model: object, users: DataFrame, seen: DataFrame, n: int) -> DataFrame:
    """The model's top ``n`` per user, minus tracks the user already played."""
    recs = model.recommendForUserSubset(users.select("user_key"), n)  # type: ignore[attr-defined]
    flat = recs.select("user_key", F.explode("recommendations").alias("r")).select(
        "user_key", F.col("r.track_key").alias("track_key"), F.col("r.rating").cast("double").alias("score")
    )
    return exclude_seen(flat, seen).withColumn("source", F.lit("als"))


def transform(
    affinity: DataFrame,
    popularity: DataFrame,
    model: object | None,
    k: int,
    version: str | None,
    run_id: str,
    run_date: str,
) -> DataFrame:
    """Top-K recommendations for every user in ``affinity`` with raw string ids, in the published schema."""
    users = affinity.select("user_key", "user_id").distinct()
    seen = affinity.select("user_key", "track_key")
    max_seen_row = seen.groupBy("user_key").count().agg(F.max("count")).first()
    max_seen = int(max_seen_row[0] or 0) if max_seen_row else 0
    # Asking for K + the largest history guarantees K unplayed candidates whenever the catalog has them.
    n = k + max_seen
    candidates = popular_candidates(users, popularity, seen, n)
    if model is not None:
        candidates = als_candidates(model, users, seen, n).unionByName(candidates)
    # A track may come from both sources: keep its ALS row.
    first = Window.partitionBy("user_key", "track_key").orderBy(_als_first())
    unique = candidates.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")
    ranked = top_k(unique, k)
    track_ids = popularity.select("track_key", "track_id")
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


def recommend(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from pyspark.ml.recommendation import ALSModel

    from expectations import suites
    from include import quality

    lake, ds, settings = ctx.settings.lake, ctx.ds, ctx.settings
    affinity = delta_io.read_partition(spark, tables.GOLD_AFFINITY, lake, ds).cache()
    popularity = delta_io.read_partition(spark, tables.GOLD_POPULARITY, lake, ds).cache()
    version: str | None = model_version(settings, ds)
    model = None
    path = tables.model_path(lake, str(version))
    if path_exists(spark, path):
        model = ALSModel.load(path)
    else:
        ctx.log(f"no model at {path}: popularity fallback for every user")
        version = None
    recs = transform(affinity, popularity, model, settings.top_k, version, ctx.run_id, ds).cache()
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
