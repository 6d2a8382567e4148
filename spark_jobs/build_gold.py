"""Silver -> gold: per user-track affinity, track popularity and daily metrics.

Reads ``silver.interactions`` (every partition up to ``<run_date>``), ``silver.quarantine`` (``<run_date>``).
Writes ``gold.user_track_affinity`` and ``gold.track_popularity`` as snapshots for ``as_of_date = <run_date>``,
and ``gold.daily_metrics`` for ``run_date = <run_date>``; each with replaceWhere, so a rerun or a
backfill of a date rewrites exactly that date.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from include.core import schemas, tables
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake import delta_io, jobs
from include.lake.frames import with_missing
from include.lake.spark import cached, fit_to_input


def counted(rows: DataFrame) -> DataFrame:
    """``rows`` with ``_plays``: how many plays each stands for (no ``plays`` column or a null one, as in rows
    written before counts existed: one play)."""
    rows = with_missing(rows, {"plays": "bigint"})
    return rows.withColumn("_plays", F.coalesce(F.col("plays"), F.lit(1)).cast("long"))


def _full_plays() -> Column:
    return F.when(~F.col("skipped"), F.col("_plays")).otherwise(F.lit(0).cast("long"))


def affinity(interactions: DataFrame, as_of: str, alpha: float) -> DataFrame:
    """One row per (user, track) with plays seen up to ``as_of`` (a row with a count stands for that many).

    ``strength = log1p(full plays)`` is what implicit ALS learns from; ``confidence = 1 + alpha * strength``
    is the weight Spark's implicit ALS gives that preference (Hu, Koren and Volinsky's formulation).
    """
    rated_at = F.when(F.col("rating").isNotNull(), F.col("played_at"))
    grouped = (
        counted(interactions)
        .groupBy(USER_KEY, TRACK_KEY, "user_id", "track_id")
        .agg(
            F.sum("_plays").alias("plays"),
            F.sum(_full_plays()).alias("full_plays"),
            F.sum("ms_played").alias("total_ms_played"),
            F.max("played_at").alias("last_played_at"),
            F.max_by("rating", rated_at).alias("latest_rating"),
            F.bool_or("liked").alias("liked"),
        )
    )
    strength = F.log1p(F.col("full_plays").cast("double"))
    return grouped.select(
        "*",
        strength.alias("strength"),
        (F.lit(1.0) + F.lit(alpha) * strength).alias("confidence"),
        F.lit(as_of).alias(tables.AS_OF_DATE),
    )


def popularity(interactions: DataFrame, as_of: str) -> DataFrame:
    """Plays and distinct listeners per track, ranked (ties broken by track_id, so ranks are stable)."""
    per_track = (
        counted(interactions)
        .groupBy(TRACK_KEY, "track_id")
        .agg(
            F.sum("_plays").alias("plays"),
            F.sum(_full_plays()).alias("full_plays"),
            F.countDistinct(USER_KEY).alias("listeners"),
        )
    )
    order = Window.orderBy(F.desc("listeners"), F.desc("full_plays"), F.asc("track_id"))
    return per_track.select(
        "*", F.row_number().over(order).alias("popularity_rank"), F.lit(as_of).alias(tables.AS_OF_DATE)
    )


RATING_BUCKETS = [x / 2 for x in range(1, 11)]


def daily_metrics(day: DataFrame, quarantined: DataFrame, run_date: str) -> DataFrame:
    """One row for the day: volume, reach and the distribution of explicit ratings (0.5 .. 5.0)."""
    buckets = [F.sum((F.col("rating") == b).cast("long")).alias(f"r{int(b * 10)}") for b in RATING_BUCKETS]
    stats = counted(day).agg(
        F.count("*").alias("events"),
        F.countDistinct(USER_KEY).alias("unique_users"),
        F.countDistinct(TRACK_KEY).alias("unique_tracks"),
        F.coalesce(F.sum("ms_played"), F.lit(0)).alias("total_ms_played"),
        F.count("rating").alias("ratings"),
        F.avg("rating").alias("avg_rating"),
        F.coalesce(F.sum(_full_plays()), F.lit(0)).alias("full_plays"),
        *buckets,
    )
    distribution = F.map_from_arrays(
        F.array(*[F.lit(f"{b:.1f}") for b in RATING_BUCKETS]),
        F.array(*[F.coalesce(F.col(f"r{int(b * 10)}"), F.lit(0)) for b in RATING_BUCKETS]),
    )
    q = quarantined.agg(F.count("*").alias("quarantined_rows"))
    return stats.crossJoin(q).select(
        F.lit(run_date).alias("run_date"),
        "events",
        "unique_users",
        "unique_tracks",
        "total_ms_played",
        "full_plays",
        "ratings",
        "avg_rating",
        distribution.alias("rating_distribution"),
        "quarantined_rows",
    )


def with_references(aff: DataFrame, dim_user: DataFrame, dim_track: DataFrame) -> DataFrame:
    """The affinity rows with the dimension keys they reference (null when missing) and a finiteness flag:
    the frame the silver -> gold suite checks."""
    users = dim_user.select(F.col(USER_KEY).alias("dim_user_key"))
    tracks = dim_track.select(F.col(TRACK_KEY).alias("dim_track_key"))
    return (
        aff.join(users, aff[USER_KEY] == users["dim_user_key"], "left")
        .join(tracks, aff[TRACK_KEY] == tracks["dim_track_key"], "left")
        .withColumn("confidence_finite", schemas.finite("confidence"))
    )


def build(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from expectations import suites
    from include.quality import runner as quality

    lake, ds = ctx.settings.lake, ctx.ds
    history = delta_io.read(spark, tables.SILVER_INTERACTIONS, lake).where(F.col("run_date") <= ds)
    n_history = history.count()
    fit_to_input(spark, n_history, ctx.settings)
    history = cached(history)
    quarantined = delta_io.read_partition(spark, tables.SILVER_QUARANTINE, lake, ds)

    aff = cached(affinity(history, ds, ctx.settings.als_value("alpha")))
    n_aff = aff.count()
    dims = (delta_io.read(spark, tables.SILVER_DIM_USER, lake), delta_io.read(spark, tables.SILVER_DIM_TRACK, lake))
    results = quality.validate(with_references(aff, *dims), suites.gold_affinity(ctx.settings.dq_severity))
    quality.record(spark, ctx, results)
    pop = popularity(history, ds)
    metrics = daily_metrics(history.where(F.col("run_date") == ds), quarantined, ds)

    delta_io.overwrite_partition(aff, tables.GOLD_AFFINITY, lake, ds)
    delta_io.overwrite_partition(pop, tables.GOLD_POPULARITY, lake, ds)
    delta_io.overwrite_partition(metrics, tables.GOLD_DAILY_METRICS, lake, ds)
    row = metrics.first()
    assert row is not None
    ctx.log(
        f"{n_history} silver rows up to {ds} -> {n_aff} affinity rows; day: {row['events']} events,"
        f" {row['unique_users']} users, {row['unique_tracks']} tracks, {row['ratings']} ratings"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("build_gold", __doc__ or "", build, argv)


if __name__ == "__main__":
    sys.exit(main())
