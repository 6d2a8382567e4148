"""Checks the integration and e2e tests share: a lake's tables read back, compared across runs, and the gold
contract."""

from __future__ import annotations

from typing import Any

from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include.core import tables
from include.lake import delta_io, gold_state
from include.serving import lookup

AUDIT_COLUMNS = {
    "_ingested_at",
    "run_id",
    "generated_at",
    "trained_at",
    "fit_seconds",
    "validated_at",
    "evaluated_at",
    "duration_seconds",
    "rows_per_second",
    "trials",
}


def read(spark: Any, table: tables.Table, lake: str) -> Any:
    return spark.read.format("delta").load(table.path(lake))


def rows(table: tables.Table, lake: str, leave_out: frozenset[str] = frozenset()) -> list[Row] | None:
    """The table's latest committed version without the audit columns and ``leave_out``, as Rows (maps as
    dicts); None if it does not exist. Read with delta-rs, as the lookups read the lake: comparing whole lakes
    table by table costs no round trips to the Spark server the jobs under test share."""
    import pyarrow as pa

    delta = lookup.snapshot(table, lake)
    if delta is None:  # ops.run_log exists only after a failure
        return None
    data = delta.to_pyarrow_table()
    data = data.select([c for c in data.column_names if c not in AUDIT_COLUMNS | leave_out])
    maps = {f.name for f in data.schema if pa.types.is_map(f.type)}
    return [Row(**{k: dict(v) if k in maps and v is not None else v for k, v in r.items()}) for r in data.to_pylist()]


def snapshot(lake: str, leave_out: frozenset[str] = frozenset()) -> dict[str, list[Row]]:
    """Every existing table's rows, without the audit columns and ``leave_out``."""
    found = {t.sql_name: rows(t, lake, leave_out) for t in tables.ALL_TABLES}
    return {name: r for name, r in found.items() if r is not None}


def assert_unchanged(now: dict[str, list], before: dict[str, list]) -> None:
    assert now.keys() == before.keys()
    for name, rows in now.items():
        assertDataFrameEqual(rows, before[name], checkRowOrder=False)


def assert_k_unplayed_tracks_per_active_user(spark: Any, lake: str, day: str, k: int) -> None:
    """Every user active up to ``day`` has exactly ranks 1..k of tracks they never played, with raw ids."""
    recs = read(spark, tables.GOLD_RECOMMENDATIONS, lake).where(F.col("run_date") == day).collect()
    aff = gold_state.as_of(spark, lake, day, alpha=1.0).collect()
    active = {r["user_id"] for r in aff}
    seen = {(r["user_id"], r["track_id"]) for r in aff}
    by_user: dict[str, list[int]] = {}
    for r in recs:
        assert (r["user_id"], r["track_id"]) not in seen
        assert r["user_id"].startswith("user_") and r["track_id"].startswith("trk_")
        assert r["source"] in ("als", "content", "popular")
        by_user.setdefault(r["user_id"], []).append(r["rank"])
    assert set(by_user) == active and len(active) > 30
    assert all(sorted(ranks) == list(range(1, k + 1)) for ranks in by_user.values())
    assert any(r["source"] == "als" and r["model_version"] for r in recs)


def assert_accounting_balances(spark: Any, lake: str) -> list[Any]:
    """Every interactions row read is kept, quarantined or counted as a duplicate; returns the counts."""
    counts = read(spark, tables.OPS_LAYER_COUNTS, lake).where("source = 'interactions'").collect()
    assert counts
    for c in counts:
        assert c["rows_in"] == c["rows_out"] + c["quarantined"] + c["duplicates"]
    return counts


def folded_as_of(spark: Any, lake: str, day: str, state: Any) -> None:
    """``state`` (a frame of affinity rows) as ``gold.user_track_affinity``'s state folded as of ``day``, a day
    ``build_gold`` passed (its ``gold.daily_metrics`` row): what the readers of the state find as of that day."""
    delta_io.replace_tagged(state.withColumn("changed_on", F.lit(day)), tables.GOLD_AFFINITY, lake, day)
    passed = spark.createDataFrame([(day, 0)], "run_date string, events long")
    delta_io.overwrite_partition(passed, tables.GOLD_DAILY_METRICS, lake, day)
