"""How a run date is folded into an incrementally kept state table of gold (``gold.user_track_affinity``).

A state table holds the current state only. Every write that folds a day in is one Delta commit tagged with the
day (:func:`include.lake.delta_io.merge_tagged`); the state as of a day is the table at the newest commit tagged
with it, read by time travel as long as ``VACUUM`` kept its files (the maintenance job keeps what the model in
use needs). The newest tagged commit names the day the current state is as of.

:func:`plan` decides, for a run date, which days to fold in and onto which state: the next day onto the current
state (the usual night); a rerun or a backfill of an earlier day onto the newest state before it, that day and
every later one again; a state recomputed from silver when the table is new, has the layout of an earlier
version (a migration, once), or no longer keeps the state to rewind to. Reads the tables' Delta logs and, for a
rewind, the state it rewinds to; writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from include.core.tables import Table
from include.lake import delta_io

MARKER = "changed_on"  # a state table has it; the per-day snapshots of earlier versions did not


@dataclass(frozen=True)
class Step:
    """Fold ``day`` in; with ``base``, onto that state (the state before the day) instead of the current table,
    rewinding every pair a day after ``rewind_after`` changed."""

    day: str
    base: DataFrame | None = None
    rewind_after: str = ""


@dataclass
class Plan:
    """Optionally a state recomputed from silver rows (``rebuild``, tagged ``rebuild_day``), then the days to
    fold in, in order; ``note`` is one line saying why when it is not the usual fold of the next day."""

    steps: list[Step] = field(default_factory=list)
    rebuild: DataFrame | None = None
    rebuild_day: str = ""
    note: str = ""
    current_day: str = ""  # the day the state is as of now ("" before it exists)


def _days(spark: SparkSession, silver: Table, lake: str, after: str, upto: str) -> list[str]:
    """The silver days in (``after``, ``upto``]: the partition values of the pruned partitions."""
    column = F.col(silver.partition_by or "")
    rows = delta_io.read(spark, silver, lake).where((column > after) & (column <= upto)).select(column).distinct()
    return sorted(str(r[0]) for r in rows.collect())


def plan(spark: SparkSession, state: Table, silver: Table, lake: str, day: str) -> Plan:
    """How to bring ``state`` to hold ``day`` (and every later day it held) from ``silver``."""
    commits = delta_io.tagged_commits(spark, state, lake) if delta_io.exists(spark, state, lake) else []
    found = _plan(spark, state, silver, lake, day, commits)
    found.current_day = commits[-1].day if commits else ""
    return found


def _plan(spark: SparkSession, state: Table, silver: Table, lake: str, day: str, commits: list[delta_io.Commit]) -> Plan:
    column = F.col(silver.partition_by or "")
    rows = delta_io.read(spark, silver, lake)
    if not delta_io.exists(spark, state, lake):
        if rows.where(column < day).limit(1).count():
            note = f"building {state.sql_name} from every silver day up to {day} (it did not exist)"
            return Plan(rebuild=rows.where(column <= day), rebuild_day=day, note=note)
        return Plan(steps=[Step(day)])
    if MARKER not in delta_io.read(spark, state, lake).columns:
        note = f"migrating {state.sql_name} to one incrementally kept state (once): recomputing it from silver"
        return Plan(rebuild=rows.where(column <= day), rebuild_day=day, note=f"{note} up to {day}")
    latest = commits[-1].day if commits else ""
    newest = max((c.day for c in commits), default="")
    if day > max(latest, newest):  # the usual night: the next day (and any day in between) onto the current state
        return Plan(steps=[Step(d) for d in sorted({*_days(spark, silver, lake, latest, day), day})])

    # A rerun or a backfill: onto the newest state before the day, that day and every later one again.
    upto = max(day, newest)
    earlier = [c for c in commits if c.day < day]
    if earlier:
        base_commit = max(earlier, key=lambda c: c.version)
        base = delta_io.read_version(spark, state, lake, base_commit.version)
        if _readable(base):
            folded = {c.day for c in commits if c.day > base_commit.day}  # days with no rows have no partition
            days = sorted({*_days(spark, silver, lake, base_commit.day, upto), *folded, day})
            note = f"rerun of {day}: folding {', '.join(days)} in again onto the state as of {base_commit.day}"
            return Plan(steps=[Step(days[0], base, base_commit.day), *[Step(d) for d in days[1:]]], note=note)
    days = sorted({*_days(spark, silver, lake, "", upto), *(c.day for c in commits), day})
    again = [d for d in days if d >= day]
    if rows.where(column < day).limit(1).count():
        last = max(d for d in days if d < day)
        note = (
            f"rerun of {day}: the state as of {last} is no longer kept; recomputing it from silver, then folding"
            f" {', '.join(again)} in again"
        )
        return Plan(steps=[Step(d) for d in again], rebuild=rows.where(column < day), rebuild_day=last, note=note)
    empty = delta_io.read(spark, state, lake).limit(0)
    note = f"rerun of {day}, the first day: folding {', '.join(again)} in again"
    return Plan(steps=[Step(again[0], empty, ""), *[Step(d) for d in again[1:]]], note=note)


def _readable(state: DataFrame) -> bool:
    """Whether every file of a table version is still there (``VACUUM`` deletes the files of old versions)."""
    try:  # a sum Delta cannot answer from file statistics: every file is opened
        state.agg(F.sum(F.length(MARKER))).collect()
    except Exception:  # Delta's missing-file error, by whatever class the session raises it
        return False
    return True


def as_of(spark: SparkSession, state: Table, lake: str, day: str) -> DataFrame:
    """The state as of ``day``: the table at the newest commit tagged with it (the current table when that commit
    is the newest)."""
    commits = delta_io.tagged_commits(spark, state, lake) if delta_io.exists(spark, state, lake) else []
    tagged = [c for c in commits if c.day == day]
    if not tagged:
        raise LookupError(f"{state.sql_name} holds no state as of {day}: its build_gold has not run for that day")
    if tagged[-1] == commits[-1]:
        return delta_io.read(spark, state, lake)
    return delta_io.read_version(spark, state, lake, tagged[-1].version)


def snapshot_of(
    spark: SparkSession,
    snapshots: Table,
    state: Table,
    lake: str,
    day: str,
    compute: Callable[[DataFrame, str], DataFrame],
) -> DataFrame | None:
    """The ``snapshots`` partition of ``day``, the day the current ``state`` is as of (``compute``-d from the state
    when it is missing); None before the state exists."""
    if not day or not delta_io.exists(spark, state, lake):
        return None
    if delta_io.exists(spark, snapshots, lake):
        found = delta_io.read_partition(spark, snapshots, lake, day)
        if found.limit(1).count():
            return found
    return compute(delta_io.read(spark, state, lake), day)
