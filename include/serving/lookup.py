"""The lake without a JVM: every delta-rs (``deltalake``) read and write goes through here, as every Spark
one goes through :mod:`include.lake.delta_io`.

Reads the Delta tables a query names, each at its latest committed version (a whole snapshot: a reader
never sees a half-written table), and queries them with DuckDB. ``get_recommendations`` is the fast path
for one user's list from the newest ``gold.recommendations`` run; ``popular`` is the list for a user it
does not know. Writes only through ``insert_new`` (a MERGE that inserts rows whose keys are new).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from include.core import tables
from include.core.config import load_settings

RECOMMENDATION_COLUMNS = ("user_id", "rank", "track_id", "score", "source", "model_version", "run_date")


def lake_uri(lake: str) -> str:
    """The lake root as delta-rs and pyarrow name it (``s3a://`` is Hadoop's spelling of ``s3://``)."""
    if lake.startswith("s3a://"):
        return "s3://" + lake.removeprefix("s3a://")
    return lake.removeprefix("file:")


def table_uri(table: tables.Table, lake: str) -> str:
    return table.path(lake_uri(lake))


def snapshot(table: tables.Table, lake: str) -> Any | None:
    """The table's latest version as a ``deltalake.DeltaTable``; None when it does not exist yet."""
    from deltalake import DeltaTable

    uri = table_uri(table, lake)
    return DeltaTable(uri) if DeltaTable.is_deltatable(uri) else None


def query(
    sql: str, lake: str, params: Sequence[Any] = (), *, missing_ok: bool = False
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run DuckDB SQL over the lake tables ``sql`` names (``gold.recommendations``): (columns, rows).
    ``params`` fill the query's ``?`` placeholders (values from users are never pasted into SQL).

    A named table that does not exist yet raises LookupError, or gives no columns and no rows with
    ``missing_ok`` (a report or a page drawn before the first run)."""
    import duckdb

    con = duckdb.connect()
    for table in tables.referenced_tables(sql):
        if table.merged_on_read:  # its files hold the folded state only: the view that merges the rest is Spark's
            raise LookupError(
                f"{table.sql_name} is merged on read (its folded state and the silver days after it):"
                " query it with Spark SQL (setlist sql without --engine duckdb)"
            )
        delta = snapshot(table, lake)
        if delta is None:
            if missing_ok:
                return [], []
            raise LookupError(f"no {table.sql_name} table under {lake} yet")
        arrow_name = f"_{table.layer}_{table.name}"
        con.register(arrow_name, delta.to_pyarrow_dataset())
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.layer}")
        con.execute(f"CREATE VIEW {table.sql_name} AS SELECT * FROM {arrow_name}")
    cursor = con.execute(sql, list(params))
    columns = [d[0] for d in cursor.description or []]
    return columns, cursor.fetchall()


def newest_partition(delta: Any, column: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The newest value of a date partition column and the file filter that selects only that partition."""
    latest = max(p[column] for p in delta.partitions())
    return latest, [(column, "=", latest)]


def insert_new(table: tables.Table, rows: list[dict[str, Any]], keys: Sequence[str], lake: str) -> None:
    """MERGE ``rows`` into ``table`` (created on first use), inserting only rows whose ``keys`` are new,
    so writing the same rows again changes nothing."""
    import pyarrow as pa
    from deltalake import write_deltalake

    data = pa.Table.from_pylist(rows)
    existing = snapshot(table, lake)
    if existing is None:
        partition_by = [table.partition_by] if table.partition_by else None
        write_deltalake(table_uri(table, lake), data, partition_by=partition_by, mode="append")
        return
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    existing.merge(data, predicate=on, source_alias="s", target_alias="t").when_not_matched_insert_all().execute()


@dataclass(frozen=True)
class _RowGroup:
    file: Any  # pyarrow.parquet.ParquetFile, kept open
    index: int
    low: str | None  # the group's smallest and largest user_id (None: no statistics, always read)
    high: str | None


@dataclass
class RecommendationReader:
    """Keeps the newest ``gold.recommendations`` run open for repeated lookups.

    On open (and when the table has a new version) it reads each file's Parquet footer once and keeps
    every row group's user_id range; a lookup then reads only the groups whose range holds the user:
    one small group, as the recommend job writes the table sorted by user with small row groups.
    """

    lake: str
    _delta: Any = None
    _version: int = -1
    _run_date: str = ""
    _groups: list[_RowGroup] = field(default_factory=list)

    def _refresh(self) -> None:
        if self._delta is None:
            self._delta = snapshot(tables.GOLD_RECOMMENDATIONS, self.lake)
            if self._delta is None:
                raise LookupError(f"no {tables.GOLD_RECOMMENDATIONS.sql_name} table under {self.lake} yet")
        else:
            self._delta.update_incremental()
        if self._delta.version() != self._version:
            latest, newest = newest_partition(self._delta, tables.RUN_DATE)
            self._groups = _row_groups(self._delta.file_uris(file_pruning_predicate=newest))
            self._run_date = latest
            self._version = self._delta.version()

    def get(self, user_id: str, k: int = 10) -> list[dict[str, Any]]:
        """The user's top ``k`` from the newest run, best first; empty for a user the run does not know."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self._refresh()
        columns = [c for c in RECOMMENDATION_COLUMNS if c != tables.RUN_DATE]
        parts = [
            g.file.read_row_group(g.index, columns=columns)
            for g in self._groups
            if g.low is None or g.high is None or g.low <= user_id <= g.high
        ]
        if not parts:
            return []
        found = pa.concat_tables(parts)
        found = found.filter(pc.equal(found["user_id"], user_id))
        found = found.take(pc.sort_indices(found, [("rank", "ascending")])).slice(0, k)
        return [{**row, tables.RUN_DATE: self._run_date} for row in found.to_pylist()]


def _row_groups(uris: list[str]) -> list[_RowGroup]:
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    groups = []
    for uri in uris:
        filesystem, path = pafs.FileSystem.from_uri(uri if "://" in uri else f"file://{uri}")
        parquet = pq.ParquetFile(filesystem.open_input_file(path))
        column = parquet.schema_arrow.get_field_index("user_id")
        for i in range(parquet.metadata.num_row_groups):
            stats = parquet.metadata.row_group(i).column(column).statistics
            has = stats is not None and stats.has_min_max
            groups.append(_RowGroup(parquet, i, stats.min if has else None, stats.max if has else None))
    return groups


def popular(k: int = 10, lake: str | None = None, genres: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ``k`` most popular tracks of the newest ``gold.track_popularity`` snapshot, in the shape of a
    recommendation row (``source = 'popular'``, score = the track's share of the top track's listeners):
    the list for a user the newest run does not know. With ``genres`` (a new user's declared genres, any
    case), the most popular tracks of those genres come first, then the rest. Empty before the first gold run."""
    import pyarrow.dataset as ds

    root = lake or load_settings().lake
    delta = snapshot(tables.GOLD_POPULARITY, root)
    if delta is None:
        return []
    latest, newest = newest_partition(delta, tables.AS_OF_DATE)
    top = delta.to_pyarrow_dataset(file_pruning_predicate=newest).to_table(
        columns=["popularity_rank", "track_id", "listeners"], filter=ds.field("popularity_rank") <= k
    )
    rows = sorted(top.to_pylist(), key=lambda r: r["popularity_rank"])
    most = rows[0]["listeners"] if rows else 1
    if genres:
        _, liked = query(
            "SELECT p.track_id, p.listeners FROM gold.track_popularity p JOIN silver.tracks t USING (track_id)"
            " WHERE p.as_of_date = ? AND list_contains(?, lower(t.genre)) ORDER BY p.popularity_rank LIMIT ?",
            root,
            [latest, [g.strip().lower() for g in genres], k],
        )
        first = [{"track_id": t, "listeners": n} for t, n in liked]
        rows = first + [r for r in rows if r["track_id"] not in {f["track_id"] for f in first}]
    return [
        {
            "user_id": None,
            "rank": rank,
            "track_id": r["track_id"],
            "score": r["listeners"] / (most or 1),
            "source": "popular",
            "model_version": None,
            tables.RUN_DATE: latest,
        }
        for rank, r in enumerate(rows[:k], start=1)
    ]


_readers: dict[str, RecommendationReader] = {}


def get_recommendations(user_id: str, k: int = 10, lake: str | None = None) -> list[dict[str, Any]]:
    """One user's top ``k`` recommendations from the newest ``gold.recommendations`` run, read through
    delta-rs (no Spark). ``lake`` defaults to the configured lake (``SETLIST_LAKE``)."""
    root = lake or load_settings().lake
    reader = _readers.get(root) or _readers.setdefault(root, RecommendationReader(root))
    return reader.get(user_id, k)
