"""Silver -> gold, incrementally: per user-track affinity, track popularity and daily metrics.

Reads ``silver.interactions`` (only the partitions of the days it folds in), ``silver.quarantine``
(``<run_date>``), ``gold.user_track_affinity`` (its current version; for a rerun of an older day also its version
as of the day before) and ``gold.track_popularity`` (the newest folded day's snapshot).
Writes ``gold.user_track_affinity``: the state of every (user, track) pair, MERGEd with the pairs one day changed,
one Delta commit per day folded in, tagged with that day (the state as of a day is the table at that commit:
:mod:`include.lake.gold_state`); ``gold.track_popularity``, a snapshot per ``as_of_date``; and
``gold.daily_metrics`` for ``run_date = <run_date>``.

A night costs what its own day costs: the day's silver rows are aggregated per pair and combined with the state of
those pairs only (sums, maxima, the latest rating by time, liked-ever and listener counts all combine), never a
re-aggregation of history. A rerun or a backfill of an older day rewinds the pairs that day and every later folded
day changed to their state as of the day before (time travel), then folds that day and each later one in again,
in order; when that state is no longer kept, it is recomputed from silver, and one line says so. Every path
gives the tables the full recomputation (:func:`full_state`) gives.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from include.core import schemas, tables
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake import delta_io, gold_state, jobs
from include.lake.frames import with_missing
from include.lake.spark import cached, fit_to_input

KEYS = [USER_KEY, TRACK_KEY]
CHANGED_ON = "changed_on"  # the last day whose rows changed the pair: what a rewind to an earlier day must undo


def counted(rows: DataFrame) -> DataFrame:
    """``rows`` with ``_plays``: how many plays each stands for (no ``plays`` column or a null one, as in rows
    written before counts existed: one play)."""
    rows = with_missing(rows, {"plays": "bigint"})
    return rows.withColumn("_plays", F.coalesce(F.col("plays"), F.lit(1)).cast("long"))


def _full_plays() -> Column:
    return F.when(~F.col("skipped"), F.col("_plays")).otherwise(F.lit(0).cast("long"))


def pair_state(interactions: DataFrame) -> DataFrame:
    """One row per (user, track) of silver ``interactions``, with the aggregates the state keeps: plays and full
    plays (a row with a count stands for that many), total ms, last played, the latest rating by time (the
    higher one at the same time) and when it was given, liked ever, and the last day with rows."""
    rated = F.col("rating").isNotNull()
    return (
        counted(interactions)
        .groupBy(*KEYS, "user_id", "track_id")
        .agg(
            F.sum("_plays").alias("plays"),
            F.sum(_full_plays()).alias("full_plays"),
            F.sum("ms_played").alias("total_ms_played"),
            F.max("played_at").alias("last_played_at"),
            F.max_by("rating", F.when(rated, F.struct("played_at", "rating"))).alias("latest_rating"),
            F.max(F.when(rated, F.col("played_at"))).alias("rated_at"),
            F.bool_or("liked").alias("liked"),
            F.max("run_date").alias(CHANGED_ON),
        )
    )


def combine(before: DataFrame, day: DataFrame) -> DataFrame:
    """The pairs of either frame (pair states) with ``day``'s aggregates added to ``before``'s: what the full
    aggregation of both frames' rows gives."""
    b, d = before.alias("b"), day.alias("d")
    joined = b.join(d, on=KEYS, how="full")

    def total(c: str) -> Column:
        return (F.coalesce(F.col(f"b.{c}"), F.lit(0)) + F.coalesce(F.col(f"d.{c}"), F.lit(0))).cast("long")

    day_rating_later = F.col("b.rated_at").isNull() | (F.col("d.rated_at") > F.col("b.rated_at"))
    day_rating_later |= (F.col("d.rated_at") == F.col("b.rated_at")) & (
        F.col("d.latest_rating") > F.col("b.latest_rating")
    )
    return joined.select(
        *KEYS,
        F.coalesce("d.user_id", "b.user_id").alias("user_id"),
        F.coalesce("d.track_id", "b.track_id").alias("track_id"),
        total("plays").alias("plays"),
        total("full_plays").alias("full_plays"),
        total("total_ms_played").alias("total_ms_played"),
        F.greatest("b.last_played_at", "d.last_played_at").alias("last_played_at"),
        F.when(F.col("d.rated_at").isNotNull() & day_rating_later, F.col("d.latest_rating"))
        .otherwise(F.col("b.latest_rating"))
        .alias("latest_rating"),
        F.greatest("b.rated_at", "d.rated_at").alias("rated_at"),
        (F.coalesce("b.liked", F.lit(False)) | F.coalesce("d.liked", F.lit(False))).alias("liked"),
        F.greatest(f"b.{CHANGED_ON}", f"d.{CHANGED_ON}").alias(CHANGED_ON),
    )


def finished(state: DataFrame, alpha: float) -> DataFrame:
    """Pair states as the table keeps them: ``strength = log1p(full plays)`` is what implicit ALS learns from;
    ``confidence = 1 + alpha * strength`` is the weight Spark's implicit ALS gives that preference (Hu, Koren and
    Volinsky's formulation)."""
    strength = F.log1p(F.col("full_plays").cast("double"))
    return state.select(
        *KEYS, "user_id", "track_id", "plays", "full_plays", "total_ms_played", "last_played_at", "latest_rating",
        "rated_at", "liked", strength.alias("strength"), (F.lit(1.0) + F.lit(alpha) * strength).alias("confidence"),
        CHANGED_ON,
    )  # fmt: skip


def full_state(interactions: DataFrame, alpha: float) -> DataFrame:
    """The affinity table recomputed from every silver row given (the reference every incremental path equals)."""
    return finished(pair_state(interactions), alpha)


def affinity(interactions: DataFrame, as_of: str, alpha: float) -> DataFrame:
    """The affinity of ``interactions`` up to ``as_of`` (``setlist evaluate`` and tests compute one directly)."""
    return full_state(interactions.where(F.col("run_date") <= as_of), alpha)


def _per_track(pairs: DataFrame, sign: int = 1) -> DataFrame:
    return pairs.groupBy(TRACK_KEY, "track_id").agg(
        (F.sum("plays") * sign).alias("plays"),
        (F.sum("full_plays") * sign).alias("full_plays"),
        (F.count("*") * sign).alias("listeners"),
    )


def ranked(per_track: DataFrame, as_of: str) -> DataFrame:
    """Tracks with at least one listener, ranked by listeners, then full plays (ties by track_id, so ranks are
    stable)."""
    order = Window.orderBy(F.desc("listeners"), F.desc("full_plays"), F.asc("track_id"))
    return per_track.where(F.col("listeners") > 0).select(
        TRACK_KEY,
        "track_id",
        F.col("plays").cast("long").alias("plays"),
        F.col("full_plays").cast("long").alias("full_plays"),
        F.col("listeners").cast("long").alias("listeners"),
        F.row_number().over(order).alias("popularity_rank"),
        F.lit(as_of).alias(tables.AS_OF_DATE),
    )


def popularity(state: DataFrame, as_of: str) -> DataFrame:
    """Plays and listeners (users with a pair) per track of an affinity state, ranked."""
    return ranked(_per_track(state), as_of)


def popularity_after(before: DataFrame, old_pairs: DataFrame, new_pairs: DataFrame, as_of: str) -> DataFrame:
    """The popularity snapshot ``before`` after the pairs ``old_pairs`` became ``new_pairs`` (the rest unchanged):
    each count moves by the difference, so no state outside the changed pairs is read."""
    counts = before.select(TRACK_KEY, "track_id", "plays", "full_plays", "listeners")
    moved = counts.unionByName(_per_track(old_pairs, -1)).unionByName(_per_track(new_pairs))
    totals = moved.groupBy(TRACK_KEY, "track_id").agg(
        *[F.sum(c).alias(c) for c in ("plays", "full_plays", "listeners")]
    )
    return ranked(totals, as_of)


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


def changed_pairs(current: DataFrame, step: gold_state.Step, day: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The rows of the pairs a step changes, before (in the current table) and after (unfinished). A step with a
    base rewinds too: it changes its day's pairs and every pair a day after ``rewind_after`` changed, whose state
    before the day is the base's."""
    keys = day.select(*KEYS)
    if step.base is not None:
        keys = keys.unionByName(current.where(F.col(CHANGED_ON) > step.rewind_after).select(*KEYS)).distinct()
    old = current.join(keys, KEYS, "left_semi")
    base = old if step.base is None else step.base.join(keys, KEYS, "left_semi")
    return old, combine(base.drop("strength", "confidence"), day)


POPULARITY_COUNTS = "track_key int, track_id string, plays long, full_plays long, listeners long"


def fold(
    spark: SparkSession, ctx: jobs.JobContext, step: gold_state.Step, day: DataFrame, popularity_before: DataFrame
) -> tuple[DataFrame, int]:
    """Fold one day (its pair states: ``day``) into the state, one MERGE tagged with the day, and write the day's
    popularity snapshot, ``popularity_before`` moved by the changed pairs alone; returns the new snapshot and how
    many pairs changed."""
    lake, alpha = ctx.settings.lake, ctx.settings.als_value("alpha")
    current = delta_io.read_or_empty(spark, tables.GOLD_AFFINITY, lake)
    old, new = changed_pairs(current, step, day)
    old, new = cached(old), cached(finished(new, alpha))
    gone = old.join(new.select(*KEYS), KEYS, "left_anti")
    delta_io.merge_tagged(new, gone, tables.GOLD_AFFINITY, lake, KEYS, step.day)
    pop = cached(popularity_after(popularity_before, old, new, step.day))
    delta_io.overwrite_partition(pop, tables.GOLD_POPULARITY, lake, step.day)
    return pop, new.count()


def build(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from expectations import suites
    from include.quality import runner as quality

    lake, ds, alpha = ctx.settings.lake, ctx.ds, ctx.settings.als_value("alpha")
    day_rows = delta_io.read_partition(spark, tables.SILVER_INTERACTIONS, lake, ds)
    fit_to_input(spark, day_rows.count(), ctx.settings)
    plan = gold_state.plan(spark, tables.GOLD_AFFINITY, tables.SILVER_INTERACTIONS, lake, ds)
    if plan.note:
        ctx.log(plan.note)

    # The day's pair states pass the silver -> gold suite before anything is written.
    day_state = cached(pair_state(day_rows))
    dims = (delta_io.read(spark, tables.SILVER_DIM_USER, lake), delta_io.read(spark, tables.SILVER_DIM_TRACK, lake))
    checked = with_references(finished(day_state, alpha), *dims)
    quality.record(spark, ctx, quality.validate(checked, suites.gold_affinity(ctx.settings.dq_severity)))

    found = gold_state.snapshot_of(
        spark, tables.GOLD_POPULARITY, tables.GOLD_AFFINITY, lake, plan.current_day, popularity
    )
    pop = spark.createDataFrame([], POPULARITY_COUNTS) if found is None else found  # None: before the first day
    if plan.rebuild is not None:
        state = cached(full_state(plan.rebuild, alpha))
        delta_io.replace_tagged(state, tables.GOLD_AFFINITY, lake, plan.rebuild_day)
        pop = cached(popularity(state, plan.rebuild_day))
        delta_io.overwrite_partition(pop, tables.GOLD_POPULARITY, lake, plan.rebuild_day)
    changed = 0
    for step in plan.steps:
        this_day = (
            day_state
            if step.day == ds
            else pair_state(delta_io.read_partition(spark, tables.SILVER_INTERACTIONS, lake, step.day))
        )
        pop, pairs_changed = fold(spark, ctx, step, this_day, pop)
        changed += pairs_changed

    quarantined = delta_io.read_partition(spark, tables.SILVER_QUARANTINE, lake, ds)
    metrics = cached(daily_metrics(day_rows, quarantined, ds))
    delta_io.overwrite_partition(metrics, tables.GOLD_DAILY_METRICS, lake, ds)
    row = metrics.first()
    assert row is not None
    pairs = delta_io.read(spark, tables.GOLD_AFFINITY, lake).count()
    ctx.log(
        f"{changed} affinity pairs changed, {pairs} in all; day: {row['events']} events,"
        f" {row['unique_users']} users, {row['unique_tracks']} tracks, {row['ratings']} ratings"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("build_gold", __doc__ or "", build, argv)


if __name__ == "__main__":
    sys.exit(main())
