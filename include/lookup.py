"""Reading the lake without a JVM: delta-rs (``deltalake``) snapshots queried with DuckDB.

Reads the Delta tables a query names, each at its latest committed version (a whole snapshot: a reader
never sees a half-written table); writes nothing. ``get_recommendations`` is the fast path for one
user's list from the newest ``gold.recommendations`` run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from include import tables
from include.config import load_settings

RECOMMENDATION_COLUMNS = ("user_id", "rank", "track_id", "score", "source", "model_version", "run_date")


def table_uri(table: tables.Table, lake: str) -> str:
    """The table's location as delta-rs names it (``s3a://`` is Hadoop's spelling of ``s3://``)."""
    path = table.path(lake)
    if path.startswith("s3a://"):
        return "s3://" + path.removeprefix("s3a://")
    return path.removeprefix("file:")


def snapshot(table: tables.Table, lake: str) -> Any | None:
    """The table's latest version as a ``deltalake.DeltaTable``; None when it does not exist yet."""
    from deltalake import DeltaTable

    uri = table_uri(table, lake)
    return DeltaTable(uri) if DeltaTable.is_deltatable(uri) else None


def query(sql: str, lake: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run DuckDB SQL over the lake tables ``sql`` names (``gold.recommendations``): (columns, rows)."""
    import duckdb

    con = duckdb.connect()
    for table in tables.referenced_tables(sql):
        delta = snapshot(table, lake)
        if delta is None:
            continue
        arrow_name = f"_{table.layer}_{table.name}"
        con.register(arrow_name, delta.to_pyarrow_dataset())
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.layer}")
        con.execute(f"CREATE VIEW {table.sql_name} AS SELECT * FROM {arrow_name}")
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description or []]
    return columns, cursor.fetchall()


@dataclass
class RecommendationReader:
    """Keeps ``gold.recommendations`` open so repeated lookups only check for a newer version."""

    lake: str
    _delta: Any = None
    _version: int = -1
    _dataset: Any = None

    def _refresh(self) -> None:
        if self._delta is None:
            self._delta = snapshot(tables.GOLD_RECOMMENDATIONS, self.lake)
            if self._delta is None:
                raise LookupError(f"no {tables.GOLD_RECOMMENDATIONS.sql_name} table under {self.lake} yet")
        else:
            self._delta.update_incremental()
        if self._delta.version() != self._version:
            latest = max(p[tables.RUN_DATE] for p in self._delta.partitions())
            self._dataset = self._delta.to_pyarrow_dataset(file_pruning_predicate=[(tables.RUN_DATE, "=", latest)])
            self._version = self._delta.version()

    def get(self, user_id: str, k: int = 10) -> list[dict[str, Any]]:
        """The user's top ``k`` from the newest run, best first; empty for a user the run does not know."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        self._refresh()
        found = self._dataset.to_table(
            columns=list(RECOMMENDATION_COLUMNS),
            filter=ds.field("user_id") == user_id,
        )
        found = found.take(pc.sort_indices(found, [("rank", "ascending")])).slice(0, k)
        return found.to_pylist()


_readers: dict[str, RecommendationReader] = {}


def get_recommendations(user_id: str, k: int = 10, lake: str | None = None) -> list[dict[str, Any]]:
    """One user's top ``k`` recommendations from the newest ``gold.recommendations`` run, read through
    delta-rs (no Spark). ``lake`` defaults to the configured lake (``SETLIST_LAKE``)."""
    root = lake or load_settings().lake
    reader = _readers.get(root) or _readers.setdefault(root, RecommendationReader(root))
    return reader.get(user_id, k)
