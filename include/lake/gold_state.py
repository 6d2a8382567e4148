"""The state of every (user, track) pair as of a day: ``gold.user_track_affinity``, merged on read.

The table holds the state *folded* as of a day: its newest commit tagged with a day
(:func:`include.lake.delta_io.merge_tagged`, :func:`~include.lake.delta_io.replace_tagged`). The silver days
after that day are read on top of it and merged pair by pair (sums, maxima, the latest rating by time and
liked-ever all merge), so a night writes no state: ``build_gold`` folds the pending days in, in one MERGE, once
more than ``affinity_fold_days`` of them are pending. The state as of an earlier day is the newest folded state
on or before it still kept (time travel, while ``VACUUM`` keeps its files) plus the silver days after it; when
none is kept, silver from the first day. A rerun or a backfill of a folded day rewinds the folded state to
before that day. SQL readers get the same state through a view (:func:`views`).

Reads the table's Delta log and versions, ``silver.interactions`` and ``gold.daily_metrics`` (the days
``build_gold`` has passed); writes nothing.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from include.core import tables
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake import delta_io
from include.lake.frames import with_missing

MARKER = "changed_on"  # the last day whose rows changed the pair; the per-day snapshots of earlier versions lacked it
KEYS = [USER_KEY, TRACK_KEY]
GROUP = [*KEYS, "user_id", "track_id"]
STATE = tables.GOLD_AFFINITY

# One silver row as a pair state of its own (a row with a count stands for that many plays; no count: one) ...
UNIT = {
    "plays": "CAST(coalesce(plays, 1) AS BIGINT)",
    "full_plays": "CAST(CASE WHEN NOT skipped THEN coalesce(plays, 1) ELSE 0 END AS BIGINT)",
    "total_ms_played": "ms_played",
    "last_played_at": "played_at",
    "latest_rating": "rating",
    "rated_at": "CASE WHEN rating IS NOT NULL THEN played_at END",
    "liked": "liked",
    MARKER: "run_date",
}
# ... and how pair states merge: what aggregating all of their rows at once gives (at the same time, the higher
# rating is the latest).
MERGE = {
    "plays": "sum(plays)",
    "full_plays": "sum(full_plays)",
    "total_ms_played": "sum(total_ms_played)",
    "last_played_at": "max(last_played_at)",
    "latest_rating": "max_by(latest_rating, CASE WHEN rated_at IS NOT NULL THEN struct(rated_at, latest_rating) END)",
    "rated_at": "max(rated_at)",
    "liked": "bool_or(liked)",
    MARKER: f"max({MARKER})",
}
STATE_COLUMNS = [*GROUP, *MERGE]


def _finish(alpha: float) -> dict[str, str]:
    """``strength = log1p(full plays)`` is what implicit ALS learns from; ``confidence = 1 + alpha * strength`` is
    the weight Spark's implicit ALS gives that preference (Hu, Koren and Volinsky's formulation)."""
    strength = "log1p(CAST(full_plays AS DOUBLE))"
    return {"strength": strength, "confidence": f"1.0 + {float(alpha)!r} * {strength}"}


def units(interactions: DataFrame) -> DataFrame:
    """Each silver row as a pair state (rows written before counts existed have no ``plays``: one play)."""
    rows = with_missing(interactions, {"plays": "bigint"})
    return rows.select(*GROUP, *[F.expr(e).alias(c) for c, e in UNIT.items()])


def merged(states: DataFrame) -> DataFrame:
    """One pair state per (user, track) of ``states``: what aggregating all of the rows behind them gives."""
    return states.groupBy(*GROUP).agg(*[F.expr(e).alias(c) for c, e in MERGE.items()])


def pair_state(interactions: DataFrame) -> DataFrame:
    """One pair state per (user, track) of silver ``interactions``."""
    return merged(units(interactions))


def finished(state: DataFrame, alpha: float) -> DataFrame:
    """Pair states as the table keeps them, in its column order."""
    finish = _finish(alpha)
    columns = [F.expr(finish[c]).alias(c) if c in finish else F.col(c) for c in STATE.columns]
    return state.select(*columns)


def full_state(interactions: DataFrame, alpha: float) -> DataFrame:
    """The state recomputed from every silver row given (the reference every other path equals)."""
    return finished(pair_state(interactions), alpha)


def valid(commits: list[delta_io.Commit]) -> list[delta_io.Commit]:
    """The tagged commits whose state still holds: a later commit tagged with the same or an earlier day rewound
    the state past them (a rerun or a backfill of a day they had folded in)."""
    kept: list[delta_io.Commit] = []
    for commit in reversed(commits):
        if not kept or commit.day < kept[-1].day:
            kept.append(commit)
    return kept[::-1]


def folded(spark: SparkSession, lake: str) -> list[delta_io.Commit]:
    """The folded states the table still holds, oldest first (none before it exists or in an earlier layout)."""
    if not delta_io.exists(spark, STATE, lake) or MARKER not in delta_io.read(spark, STATE, lake).columns:
        return []
    return valid(delta_io.tagged_commits(spark, STATE, lake))


def _readable(state: DataFrame) -> bool:
    """Whether every file of a table version is still there (``VACUUM`` deletes the files of old versions)."""
    try:  # a sum Delta cannot answer from file statistics: every file is opened
        state.agg(F.sum(F.length(MARKER))).collect()
    except Exception:  # Delta's missing-file error, by whatever class the session raises it
        return False
    return True


def base(spark: SparkSession, lake: str, day: str, before: bool = False) -> tuple[DataFrame | None, str]:
    """The newest folded state as of ``day`` (strictly before it with ``before``) still readable, and the day it is
    as of; ``(None, "")`` when there is none (silver from the first day is the state then)."""
    every = folded(spark, lake)
    commits = [c for c in every if c.day < day or (c.day == day and not before)]
    if commits and commits[-1] == every[-1]:
        return delta_io.read(spark, STATE, lake), commits[-1].day
    for commit in reversed(commits):
        frame = delta_io.read_version(spark, STATE, lake, commit.version)
        if _readable(frame):
            return frame, commit.day
    return None, ""


def silver_after(spark: SparkSession, lake: str, after: str, upto: str) -> DataFrame:
    """Silver rows of the days in (``after``, ``upto``]."""
    column = F.col(tables.RUN_DATE)
    return delta_io.read(spark, tables.SILVER_INTERACTIONS, lake).where((column > after) & (column <= upto))


def state_as_of(spark: SparkSession, lake: str, day: str, alpha: float) -> DataFrame:
    """The state as of ``day``: the newest folded state on or before it merged with the silver days after it."""
    found, since = base(spark, lake, day)
    if found is None:
        return full_state(silver_after(spark, lake, "", day), alpha)
    if since == day:  # as folded (its confidence with the alpha of its fold)
        return found
    pending = units(silver_after(spark, lake, since, day))
    return finished(merged(found.select(*STATE_COLUMNS).unionByName(pending)), alpha)


def passed(spark: SparkSession, lake: str, upto: str) -> list[str]:
    """The days up to ``upto`` that ``build_gold`` has passed (it writes their ``gold.daily_metrics`` row last)."""
    metrics = tables.GOLD_DAILY_METRICS
    if not delta_io.exists(spark, metrics, lake):
        return []
    days = delta_io.read(spark, metrics, lake).where(F.col(tables.RUN_DATE) <= upto).select(tables.RUN_DATE)
    return sorted(str(r[0]) for r in days.distinct().collect())


def as_of(spark: SparkSession, lake: str, day: str, alpha: float) -> DataFrame:
    """The state as of a day ``build_gold`` has passed."""
    if day not in passed(spark, lake, day):
        raise LookupError(f"{STATE.sql_name} holds no state as of {day}: its build_gold has not run for that day")
    return state_as_of(spark, lake, day, alpha)


def views(spark: SparkSession, lake: str, alpha: float) -> dict[str, str]:
    """The SQL view that reads ``gold.user_track_affinity`` as it is now: the folded state and the silver days
    after it, up to the newest day ``build_gold`` has passed (empty before it has passed one)."""
    silver, metrics = tables.SILVER_INTERACTIONS, tables.GOLD_DAILY_METRICS
    if not (delta_io.exists(spark, silver, lake) and delta_io.exists(spark, metrics, lake)):
        return {}
    rows = delta_io.sql_path(silver.path(lake))
    if "plays" not in delta_io.read(spark, silver, lake).columns:  # written before counts existed
        rows = f"(SELECT *, CAST(NULL AS BIGINT) AS plays FROM {rows})"
    unit = ", ".join([*GROUP, *(f"{e} AS {c}" for c, e in UNIT.items())])
    where = f"run_date <= (SELECT max(run_date) FROM {delta_io.sql_path(metrics.path(lake))})"
    pending = f"SELECT {unit} FROM {rows} WHERE {where}"
    if folded(spark, lake):
        path = delta_io.sql_path(STATE.path(lake))
        pending += f" AND run_date > (SELECT coalesce(max({MARKER}), '') FROM {path})"
        pending = f"SELECT {', '.join(STATE_COLUMNS)} FROM {path} UNION ALL {pending}"
    aggregates = ", ".join(f"{e} AS {c}" for c, e in MERGE.items())
    state = f"SELECT {', '.join(GROUP)}, {aggregates} FROM ({pending}) GROUP BY {', '.join(GROUP)}"
    finish = _finish(alpha)
    columns = ", ".join(f"{finish[c]} AS {c}" if c in finish else c for c in STATE.columns)
    return {STATE.sql_name: f"SELECT {columns} FROM ({state})"}
