"""Table maintenance: OPTIMIZE the recent partitions of every lake table, then VACUUM.

Reads and rewrites the files of every existing table under ``<lake>``. OPTIMIZE commits a new version with
the same rows: partitioned tables only in the partitions of the ``RECENT_DAYS`` days up to ``--run-date``
(older ones were compacted by earlier runs), unpartitioned tables whole; a table with a ``cluster_by``
column (``gold.recommendations``: ``user_id``) is Z-ordered by it in its small row groups, so single-user
lookups stay cheap.
VACUUM then deletes files that no version within ``vacuum_retention_hours`` (at least 168: 7 days of time
travel) still needs. Writes nothing else; rerunning it changes no rows.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession

from include.core import tables
from include.lake import delta_io, jobs

RECENT_DAYS = 7


def recent_partitions(table: tables.Table, run_date: dt.date, days: int = RECENT_DAYS) -> str | None:
    """The OPTIMIZE predicate of a table: its partitions of the ``days`` days up to ``run_date``."""
    if table.partition_by is None:
        return None
    first = run_date - dt.timedelta(days=days - 1)
    return f"{table.partition_by} >= '{first.isoformat()}' AND {table.partition_by} <= '{run_date.isoformat()}'"


def maintain(spark: SparkSession, ctx: jobs.JobContext) -> None:
    lake, hours = ctx.settings.lake, ctx.settings.vacuum_retention_hours
    for table in tables.ALL_TABLES:
        if not delta_io.exists(spark, table, lake):
            continue
        removed, added = delta_io.optimize(spark, table, lake, where=recent_partitions(table, ctx.run_date))
        delta_io.vacuum(spark, table, lake, hours)
        ctx.log(f"{table.sql_name}: optimize {removed} files -> {added}; vacuum keeps {hours} h of history")


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("maintain", __doc__ or "", maintain, argv)


if __name__ == "__main__":
    sys.exit(main())
