"""Silver -> gold: per user-track affinity, track popularity and daily metrics, at the cost of the day.

Reads ``silver.interactions`` (the day's partition; the partitions after the folded state's day), the keys of
``gold.user_track_affinity``'s folded state, ``silver.quarantine`` (``<run_date>``) and ``gold.track_popularity``
(the newest snapshot before the day).
Writes ``gold.track_popularity``, a snapshot per ``as_of_date``; ``gold.daily_metrics`` for ``run_date =
<run_date>`` (last: it marks the day passed); and ``gold.user_track_affinity`` only to fold days in or rewind.

The affinity of every (user, track) pair is merged on read (:mod:`include.lake.gold_state`): the table keeps the
state folded as of a day, readers merge the silver days after it on top. So a night writes no state: the day's
pairs pass the silver -> gold suite, its popularity is the snapshot before it moved by the day's plays and new
listeners (pairs the folded state and the pending days do not have), and once more than ``affinity_fold_days``
days are pending they are folded in, one MERGE tagged with the day. A rerun or a backfill of a day the state has
folded in rewinds it to its newest folded state before that day (time travel; recomputed from silver when no
longer kept, said in one line), and recomputes the popularity of that day and every later one. Every path gives
the tables the full recomputation (:func:`full_state`) gives.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from include.core import schemas, tables
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake import delta_io, gold_state, jobs
from include.lake.gold_state import KEYS, finished, full_state, merged, pair_state, units
from include.lake.spark import cached, fit_to_input

__all__ = ["finished", "full_state", "pair_state"]
STATE = tables.GOLD_AFFINITY


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


def popularity_moved(before: DataFrame, rows: DataFrame, new_pairs: DataFrame, as_of: str) -> DataFrame:
    """The popularity snapshot ``before`` moved by the silver ``rows`` after it: their plays added, and one listener
    for each of ``new_pairs`` (the pairs among them no earlier state had), so no earlier state is aggregated."""
    counts = before.select(TRACK_KEY, "track_id", "plays", "full_plays", "listeners")
    plays = (
        units(rows)
        .groupBy(TRACK_KEY, "track_id")
        .agg(
            F.sum("plays").alias("plays"),
            F.sum("full_plays").alias("full_plays"),
            F.lit(0).cast("long").alias("listeners"),
        )
    )
    listeners = new_pairs.groupBy(TRACK_KEY, "track_id").agg(
        F.lit(0).cast("long").alias("plays"), F.lit(0).cast("long").alias("full_plays"), F.count("*").alias("listeners")
    )
    totals = counts.unionByName(plays).unionByName(listeners).groupBy(TRACK_KEY, "track_id")
    return ranked(totals.agg(*[F.sum(c).alias(c) for c in ("plays", "full_plays", "listeners")]), as_of)


def new_pairs(rows: DataFrame, known: DataFrame) -> DataFrame:
    """The (user, track) pairs of ``rows`` that ``known`` (pair keys) does not have. The known keys the rows have
    are found first, the rows' keys broadcast: a scan of the known keys, no shuffle of them."""
    pairs = rows.select(*KEYS, "track_id").distinct()
    seen = known.join(F.broadcast(pairs.select(*KEYS)), KEYS, "left_semi").distinct()
    return pairs.join(seen, KEYS, "left_anti")


RATING_BUCKETS = [x / 2 for x in range(1, 11)]


def daily_metrics(day: DataFrame, quarantined: DataFrame, run_date: str) -> DataFrame:
    """One row for the day: volume, reach and the distribution of explicit ratings (0.5 .. 5.0)."""
    buckets = [F.sum((F.col("latest_rating") == b).cast("long")).alias(f"r{int(b * 10)}") for b in RATING_BUCKETS]
    stats = units(day).agg(
        F.count("*").alias("events"),
        F.countDistinct(USER_KEY).alias("unique_users"),
        F.countDistinct(TRACK_KEY).alias("unique_tracks"),
        F.coalesce(F.sum("total_ms_played"), F.lit(0)).alias("total_ms_played"),
        F.count("latest_rating").alias("ratings"),
        F.avg("latest_rating").alias("avg_rating"),
        F.coalesce(F.sum("full_plays"), F.lit(0)).alias("full_plays"),
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


def _days(rows: DataFrame) -> list[str]:
    """The run dates of silver ``rows`` (the values of the partitions they prune to)."""
    return sorted(str(r[0]) for r in rows.select(tables.RUN_DATE).distinct().collect())


def rewind(spark: SparkSession, ctx: jobs.JobContext, alpha: float) -> str:
    """Make the folded state end before the run date when it has folded that day in (a rerun or a backfill): its
    newest folded state before the day, else recomputed from silver; returns the day it is then as of and the line
    that says what happened ("" when nothing had to)."""
    lake, ds = ctx.settings.lake, ctx.ds
    commits = gold_state.folded(spark, lake)
    if delta_io.exists(spark, STATE, lake) and not commits:
        day = max(_days(gold_state.silver_after(spark, lake, "", ds)), default=ds)
        note = f"migrating {STATE.sql_name} to one folded state (once): recomputing it from silver up to {day}"
        ctx.log(note)
        delta_io.replace_tagged(
            cached(full_state(gold_state.silver_after(spark, lake, "", day), alpha)), STATE, lake, day
        )
        return day
    if not commits or commits[-1].day < ds:
        return commits[-1].day if commits else ""
    found, since = gold_state.base(spark, lake, ds, before=True)
    if found is not None:
        ctx.log(f"rerun of {ds}: {STATE.sql_name} rewound to its state folded as of {since} (time travel)")
        delta_io.replace_tagged(cached(found), STATE, lake, since)
        return since
    earlier = _days(gold_state.silver_after(spark, lake, "", ds).where(F.col(tables.RUN_DATE) < ds))
    since = earlier[-1] if earlier else ""
    ctx.log(
        f"rerun of {ds}: no folded state of {STATE.sql_name} before {ds} is kept; recomputing it from silver"
        + (f" up to {since}" if since else " (no earlier day)")
    )
    state = full_state(gold_state.silver_after(spark, lake, "", since), alpha)
    delta_io.replace_tagged(cached(state), STATE, lake, since)
    return since


def known_pairs(spark: SparkSession, lake: str, since: str, upto: str) -> DataFrame:
    """The pair keys of the state as of ``upto``: the folded state's (as of ``since``) and the silver days after."""
    pending = gold_state.silver_after(spark, lake, since, upto).select(*KEYS)
    if not since:
        return pending
    return delta_io.read(spark, STATE, lake).select(*KEYS).unionByName(pending)


def snapshots(spark: SparkSession, lake: str) -> list[str]:
    """The days ``gold.track_popularity`` holds a snapshot of."""
    if not delta_io.exists(spark, tables.GOLD_POPULARITY, lake):
        return []
    return sorted(
        str(r[0])
        for r in delta_io.read(spark, tables.GOLD_POPULARITY, lake).select(tables.AS_OF_DATE).distinct().collect()
    )


def write_popularity(spark: SparkSession, ctx: jobs.JobContext, since: str, alpha: float) -> None:
    """The day's snapshot: the one before it moved by the days after it; recomputed from the state for a day that
    has a snapshot after it (a backfill), and then every later snapshot too."""
    lake, ds = ctx.settings.lake, ctx.ds
    days = snapshots(spark, lake)
    later = [d for d in days if d > ds]
    before = max((d for d in days if d < ds), default="")
    if later or not before or since > before:
        if later:
            ctx.log(f"rerun of {ds}: recomputing the popularity of {', '.join([ds, *later])}")
        for day in [ds, *later]:
            pop = popularity(gold_state.state_as_of(spark, lake, day, alpha), day)
            delta_io.overwrite_partition(pop, tables.GOLD_POPULARITY, lake, day)
        return
    rows = gold_state.silver_after(spark, lake, before, ds)
    fresh = new_pairs(rows, known_pairs(spark, lake, since, before))
    previous = delta_io.read_partition(spark, tables.GOLD_POPULARITY, lake, before)
    delta_io.overwrite_partition(popularity_moved(previous, rows, fresh, ds), tables.GOLD_POPULARITY, lake, ds)


def fold(spark: SparkSession, ctx: jobs.JobContext, since: str, alpha: float) -> None:
    """Fold the pending days (after ``since``, up to the run date) into the state when more than
    ``affinity_fold_days`` are pending: one MERGE of the pairs they changed, tagged with the run date."""
    lake, ds = ctx.settings.lake, ctx.ds
    rows = gold_state.silver_after(spark, lake, since, ds)
    pending = _days(rows)
    if since and len(pending) <= ctx.settings.affinity_fold_days:  # the first day is folded in at once
        ctx.log(f"{len(pending)} days read on top of the state folded as of {since or '(none yet)'}")
        return
    if not since:
        delta_io.replace_tagged(cached(full_state(rows, alpha)), STATE, lake, ds)
    else:
        changed = rows.select(*KEYS).distinct()
        old = delta_io.read(spark, STATE, lake).join(changed, KEYS, "left_semi").select(*gold_state.STATE_COLUMNS)
        new = cached(finished(merged(old.unionByName(units(rows))), alpha))
        delta_io.merge_tagged(new, new.select(*KEYS).limit(0), STATE, lake, KEYS, ds)
    span = f" ({pending[0]} to {pending[-1]})" if pending else ""  # none: a first day without rows
    ctx.log(f"folded {len(pending)} days{span} into {STATE.sql_name}")


def build(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from expectations import suites
    from include.quality import runner as quality

    lake, ds, alpha = ctx.settings.lake, ctx.ds, ctx.settings.als_value("alpha")
    day_rows = delta_io.read_partition(spark, tables.SILVER_INTERACTIONS, lake, ds)
    fit_to_input(spark, day_rows.count(), ctx.settings)

    # The day's pair states pass the silver -> gold suite before anything is written.
    day_state = cached(finished(pair_state(day_rows), alpha))
    dims = (delta_io.read(spark, tables.SILVER_DIM_USER, lake), delta_io.read(spark, tables.SILVER_DIM_TRACK, lake))
    quality.record(
        spark, ctx, quality.validate(with_references(day_state, *dims), suites.gold_affinity(ctx.settings.dq_severity))
    )

    since = rewind(spark, ctx, alpha)
    write_popularity(spark, ctx, since, alpha)
    fold(spark, ctx, since, alpha)

    quarantined = delta_io.read_partition(spark, tables.SILVER_QUARANTINE, lake, ds)
    metrics = cached(daily_metrics(day_rows, quarantined, ds))
    delta_io.overwrite_partition(metrics, tables.GOLD_DAILY_METRICS, lake, ds)
    row = metrics.first()
    assert row is not None
    ctx.log(
        f"{day_state.count()} affinity pairs played on the day; day: {row['events']} events,"
        f" {row['unique_users']} users, {row['unique_tracks']} tracks, {row['ratings']} ratings"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("build_gold", __doc__ or "", build, argv)


if __name__ == "__main__":
    sys.exit(main())
