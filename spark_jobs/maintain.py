"""Table maintenance: drop snapshots past their retention, OPTIMIZE the recent partitions of every lake table,
then VACUUM.

Reads and rewrites the files of every existing table under ``<lake>``. OPTIMIZE commits a new version with
the same rows: partitioned tables only in the partitions of the ``RECENT_DAYS`` days up to ``--run-date``
(older ones were compacted by earlier runs), unpartitioned tables whole; a table with a ``cluster_by``
column (``gold.recommendations``: ``user_id``) is Z-ordered by it in its small row groups, so single-user
lookups stay cheap.
VACUUM then deletes files that no version within ``vacuum_retention_hours`` (at least 168: 7 days of time
travel) still needs; for ``gold.user_track_affinity`` at least back to its newest folded state on or before the
day of the model in use (the newest promoted nightly run), so that model's training data stays readable. First,
the snapshot partitions of ``gold.track_popularity`` older than ``snapshot_retention_days`` are deleted, but the
in-use model's day. Rerunning it changes no rows.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from include.core import tables
from include.lake import delta_io, gold_state, jobs

RECENT_DAYS = 7


def recent_partitions(table: tables.Table, run_date: dt.date, days: int = RECENT_DAYS) -> str | None:
    """The OPTIMIZE predicate of a table: its partitions of the ``days`` days up to ``run_date``."""
    if table.partition_by is None:
        return None
    first = run_date - dt.timedelta(days=days - 1)
    return f"{table.partition_by} >= '{first.isoformat()}' AND {table.partition_by} <= '{run_date.isoformat()}'"


# Snapshot tables: one partition per day, each a whole state; kept ``snapshot_retention_days``.
SNAPSHOTS = (tables.GOLD_POPULARITY,)


def in_use_day(spark: SparkSession, lake: str) -> str | None:
    """The run date of the model in use (the newest promoted nightly run): its inputs are kept while it serves."""
    if not delta_io.exists(spark, tables.OPS_MODEL_RUNS, lake):
        return None
    runs = delta_io.read(spark, tables.OPS_MODEL_RUNS, lake).where("kind = 'nightly' AND promoted")
    row = runs.agg(F.max("run_date")).first()
    return None if row is None else row[0]


def drop_old_snapshots(spark: SparkSession, ctx: jobs.JobContext, keep: str | None) -> None:
    """Delete the snapshots older than the retention, but the one of the model in use."""
    cutoff = (ctx.run_date - dt.timedelta(days=ctx.settings.snapshot_retention_days - 1)).isoformat()
    for table in SNAPSHOTS:
        if delta_io.exists(spark, table, ctx.settings.lake):
            spared = f" AND {table.partition_by} <> '{keep}'" if keep else ""
            delta_io.delete_where(spark, table, ctx.settings.lake, f"{table.partition_by} < '{cutoff}'{spared}")
            ctx.log(
                f"{table.sql_name}: snapshots before {cutoff} dropped" + (f" (but {keep}'s, in use)" if keep else "")
            )


def retention_hours(spark: SparkSession, ctx: jobs.JobContext, table: tables.Table, keep: str | None) -> int:
    """How much history VACUUM keeps of ``table``: the setting, or longer for a state table whose version as of
    the in-use model's day is older (its training data stays readable by time travel)."""
    hours = ctx.settings.vacuum_retention_hours
    if table is not tables.GOLD_AFFINITY or keep is None:
        return hours
    tagged = [c for c in gold_state.folded(spark, ctx.settings.lake) if c.day <= keep]  # what its state starts from
    if not tagged:
        return hours
    age = dt.datetime.now(dt.UTC).replace(tzinfo=None) - tagged[-1].timestamp.replace(tzinfo=None)
    return max(hours, int(age.total_seconds() // 3600) + 24)


def maintain(spark: SparkSession, ctx: jobs.JobContext) -> None:
    lake = ctx.settings.lake
    keep = in_use_day(spark, lake)
    drop_old_snapshots(spark, ctx, keep)
    for table in tables.ALL_TABLES:
        if not delta_io.exists(spark, table, lake):
            continue
        removed, added = delta_io.optimize(spark, table, lake, where=recent_partitions(table, ctx.run_date))
        hours = retention_hours(spark, ctx, table, keep)
        delta_io.vacuum(spark, table, lake, hours)
        ctx.log(f"{table.sql_name}: optimize {removed} files -> {added}; vacuum keeps {hours} h of history")


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("maintain", __doc__ or "", maintain, argv)


if __name__ == "__main__":
    sys.exit(main())
