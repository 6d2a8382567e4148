"""Every Delta read and write in Setlist goes through here, so that each write is scoped and atomic.

Reads and writes the Delta tables named in :mod:`include.core.tables` under a lake root. Writes are either a
``replaceWhere`` overwrite of one partition value or a ``MERGE`` on keys; both commit atomically, so a
reader sees the table before or after a run, never between. Table operations are DataFrame writes and Delta
SQL (``MERGE INTO``, ``OPTIMIZE``, ``VACUUM``, ``DESCRIBE HISTORY``), never the ``DeltaTable`` Python API,
which has no Spark Connect implementation: the same code runs in a Connect client and a classic driver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StructType

from include.core.tables import ALL_TABLES, Table
from include.lake import faults

ROW_GROUP_CONF = "parquet.block.size"
# Delta's write conflicts (SQLSTATE 2D521: another writer committed to what this one read) and a table that
# another writer created first; the write is then tried again on the new version.
CONFLICT_STATE = "2D521"
CONFLICTS = ("DELTA_CONCURRENT_", "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED", "DELTA_PATH_EXISTS")
COMMIT_ATTEMPTS = 6
T = TypeVar("T")
log = logging.getLogger(__name__)
_VIEWS = itertools.count()  # names of the session's temporary MERGE sources
LISTING_CONF = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


class ConcurrentWriteError(RuntimeError):
    """Other writers kept committing to a table first; the message says which table and how often."""


def _conflict(exc: Exception) -> str | None:
    """The name of the Delta write conflict ``exc`` is, if it is one."""
    state = exc.getSqlState() if isinstance(exc, PySparkException) else None
    text = str(exc)
    named = next((text[i : text.find("]", i)] for c in CONFLICTS if (i := text.find(c)) >= 0), None)
    return named or ("SQLSTATE " + state if state == CONFLICT_STATE else None)


def _committing(table: Table, write: Callable[[], T], attempts: int = COMMIT_ATTEMPTS) -> T:
    """Run one write (one Delta commit) and run it again, from a fresh read, when another writer's commit
    conflicts with it: replaceWhere and MERGE recompute from the table's new version, so the outcome is that of
    the two writes one after the other. Gives up after ``attempts`` with one line."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except Exception as exc:
            conflict = _conflict(exc)
            if conflict is None:
                raise
            if attempt == attempts:
                raise ConcurrentWriteError(
                    f"{table.sql_name}: another writer committed first {attempt} times in a row ({conflict}); "
                    "nothing of this write was committed: run the day again once the other run has finished"
                ) from None
            log.warning("%s: %s, writing again (attempt %d of %d)", table.sql_name, conflict, attempt + 1, attempts)
            time.sleep(random.uniform(0.2, 0.5) * attempt)  # the writers do not retry in step
    raise AssertionError("unreachable")


def sql_path(path: str) -> str:
    """A table's path as Delta SQL names it (``delta.`<path>```)."""
    return "delta.`" + path.replace("`", "``") + "`"


def exists(spark: SparkSession, table: Table, lake: str) -> bool:
    """Whether the table has a Delta log (resolving its schema reads the log, nothing else)."""
    try:
        spark.read.format("delta").load(table.path(lake)).schema  # noqa: B018
    except AnalysisException:
        return False
    return True


def version(spark: SparkSession, table: Table, lake: str) -> int:
    """The table's current Delta version (what a run read, recorded so it can be read again by time travel)."""
    row = spark.sql(f"DESCRIBE HISTORY {sql_path(table.path(lake))} LIMIT 1").select("version").first()
    return int(row[0]) if row else -1


def read(spark: SparkSession, table: Table, lake: str) -> DataFrame:
    return spark.read.format("delta").load(table.path(lake))


def read_or_empty(spark: SparkSession, table: Table, lake: str) -> DataFrame:
    """The table, or an empty frame of its declared schema before its first write."""
    if exists(spark, table, lake):
        return read(spark, table, lake)
    return spark.createDataFrame([], table.declared)


def rows_frame(spark: SparkSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> DataFrame:
    """``rows`` (values by column name) as a frame of the table's declared schema; its ``stamped`` column,
    if it has one, is the time of the write."""
    fields = [f for f in table.declared.fields if f.name != table.stamped]
    frame = spark.createDataFrame([tuple(r[f.name] for f in fields) for r in rows], StructType(fields))
    return frame.withColumn(table.stamped, F.current_timestamp()) if table.stamped else frame


def read_partition(spark: SparkSession, table: Table, lake: str, value: str) -> DataFrame:
    if table.partition_by is None:
        raise ValueError(f"{table.sql_name} is not partitioned")
    return read(spark, table, lake).where(f"{table.partition_by} = '{value}'")


@contextlib.contextmanager
def session_conf(spark: SparkSession, key: str, value: object | None) -> Iterator[None]:
    """Set a Spark SQL setting for the statements inside (``None``: leave it as it is), then restore it."""
    previous = spark.conf.get(key, None)
    if value is not None:
        spark.conf.set(key, str(value))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def overwrite_partition(
    df: DataFrame,
    table: Table,
    lake: str,
    value: str,
    where: str | None = None,
) -> None:
    """Replace exactly one partition value (narrowed by ``where``), atomically; the rest is untouched."""
    if table.partition_by is None:
        raise ValueError(f"{table.sql_name} is not partitioned")
    column = table.partition_by
    predicate = f"{table.partition_by} = '{value}'" + (f" AND ({where})" if where else "")
    # mergeSchema: a column added to a table's declared schema (silver's plays) is added to the existing table;
    # its partitions written before read it as null.
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate).option("mergeSchema", "true")
    # Delta takes the Parquet row group size from the session, not from write options.

    def write() -> None:
        with session_conf(df.sparkSession, ROW_GROUP_CONF, table.row_group_bytes):
            writer.partitionBy(column).save(table.path(lake))

    with faults.at(table.sql_name, table.path(lake)):
        _committing(table, write)


def optimize(spark: SparkSession, table: Table, lake: str, where: str | None = None) -> tuple[int, int]:
    """Compact small files in the rows matching ``where`` (Z-ordered by the table's ``cluster_by``, in its
    row group size); one atomic commit with the same rows. Returns (files removed, files added)."""
    statement = f"OPTIMIZE {sql_path(table.path(lake))}"
    if where:
        statement += f" WHERE {where}"
    if table.cluster_by:
        statement += f" ZORDER BY (`{table.cluster_by}`)"
    with session_conf(spark, ROW_GROUP_CONF, table.row_group_bytes), faults.at(table.sql_name, table.path(lake)):
        row = spark.sql(statement).first()
    assert row is not None
    metrics = row["metrics"]
    return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])


def vacuum(spark: SparkSession, table: Table, lake: str, retention_hours: int) -> None:
    """Delete files no table version within ``retention_hours`` needs (time travel stays possible that far)."""
    from include.lake.spark import parallelism

    # VACUUM lists files with as many tasks as this setting (default 10,000): minutes for a small table.
    with session_conf(spark, LISTING_CONF, parallelism(spark) * 2):
        spark.sql(f"VACUUM {sql_path(table.path(lake))} RETAIN {int(retention_hours)} HOURS").collect()


def merge(
    df: DataFrame | Callable[[], DataFrame],
    table: Table,
    lake: str,
    keys: Sequence[str],
    update: bool = True,
    newer_than: str | None = None,
) -> int:
    """Upsert ``df`` on ``keys`` and return how many source rows were new or changed.

    Only rows that are new, or (with ``update``) differ in a column other than ``keys`` and
    ``newer_than``, reach the MERGE; when there are none nothing is committed, so an unchanged daily
    snapshot costs one join instead of a table rewrite. With ``update=False`` existing rows are never
    changed (insert-only), as dimension keys require. With ``newer_than``, a row is updated only from a
    source row whose column is not older, so a backfill of an old date does not roll a newer row back.
    When ``df`` is a function, it is called for each attempt: a source computed from the table itself (new
    dimension keys after the largest one) is computed again from the version another writer committed.
    A column ``df`` has and the table has not is added to the table (older rows read it as null).
    """
    with faults.at(table.sql_name, table.path(lake)):
        return _committing(table, lambda: _merge(df() if callable(df) else df, table, lake, keys, update, newer_than))


def _merge(df: DataFrame, table: Table, lake: str, keys: Sequence[str], update: bool, newer_than: str | None) -> int:
    spark = df.sparkSession
    path = table.path(lake)
    if not exists(spark, table, lake):
        df.write.format("delta").mode("error").save(path)
        return df.count()
    compared = [*keys, *([c for c in df.columns if c not in keys and c != newer_than] if update else [])]
    maps = {f.name for f in df.schema.fields if isinstance(f.dataType, MapType)}

    def value(side: str, c: str) -> Column:  # maps have no equality in Spark SQL: compare their JSON
        return F.to_json(F.col(f"{side}.`{c}`")) if c in maps else F.col(f"{side}.`{c}`")

    target = read(spark, table, lake)
    # Columns the table does not have yet (a newer schema): every row is written, and the MERGE adds them.
    added = [c for c in df.columns if c not in target.columns]
    same = [value("s", c).eqNullSafe(value("t", c)) for c in compared]
    pending = (df if added else df.alias("s").join(target.alias("t"), same, "left_anti")).cache()
    try:
        count = pending.count()
        if count:
            view = f"setlist_merge_{table.layer}_{table.name}_{next(_VIEWS)}"
            pending.createOrReplaceTempView(view)
            on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
            evolve = " WITH SCHEMA EVOLUTION" if added else ""
            statement = f"MERGE{evolve} INTO {sql_path(path)} AS t USING {view} AS s ON {on}"
            if update:
                newer = f" AND s.`{newer_than}` >= t.`{newer_than}`" if newer_than else ""
                statement += f" WHEN MATCHED{newer} THEN UPDATE SET *"
            try:
                spark.sql(statement + " WHEN NOT MATCHED THEN INSERT *").collect()
            finally:
                spark.catalog.dropTempView(view)
    finally:
        pending.unpersist()
    return count


# -- state tables: each write of the folded state is one commit tagged with its day (include/lake/gold_state.py) -

TAG = "setlist as_of_date="
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"  # the commit's own metadata: atomic with it


@dataclass(frozen=True)
class Commit:
    version: int
    day: str
    timestamp: dt.datetime


def tagged_commits(spark: SparkSession, table: Table, lake: str) -> list[Commit]:
    """The table's commits tagged with a day, oldest first (as far back as its Delta log reaches)."""
    history = spark.sql(f"DESCRIBE HISTORY {sql_path(table.path(lake))}")
    found = [
        Commit(int(r["version"]), str(r["userMetadata"]).removeprefix(TAG), r["timestamp"])
        for r in history.select("version", "userMetadata", "timestamp").collect()
        if str(r["userMetadata"] or "").startswith(TAG)
    ]
    return sorted(found, key=lambda c: c.version)


def delete_where(spark: SparkSession, table: Table, lake: str, predicate: str) -> None:
    """Delete the rows matching ``predicate`` (one atomic commit; nothing when none matches)."""
    with faults.at(table.sql_name, table.path(lake)):
        _committing(table, lambda: spark.sql(f"DELETE FROM {sql_path(table.path(lake))} WHERE {predicate}").collect())


def read_version(spark: SparkSession, table: Table, lake: str, version: int) -> DataFrame:
    """The table as it was at ``version`` (time travel)."""
    return spark.read.format("delta").option("versionAsOf", version).load(table.path(lake))


def replace_tagged(df: DataFrame, table: Table, lake: str, day: str) -> None:
    """``df`` as the whole table (its layout replaces any earlier one), one commit tagged ``day``."""
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    with session_conf(df.sparkSession, USER_METADATA, f"{TAG}{day}"), faults.at(table.sql_name, table.path(lake)):
        _committing(table, lambda: writer.save(table.path(lake)), attempts=1)


def merge_tagged(new: DataFrame, gone: DataFrame, table: Table, lake: str, keys: Sequence[str], day: str) -> None:
    """One commit tagged ``day``: the rows of ``new`` replace or join the table's rows with their ``keys``, and
    the rows with the keys of ``gone`` are deleted. A table that does not exist yet is ``new``. Both were
    computed from the table's current version, so another writer's commit in between is not written over: it
    ends the job with :class:`ConcurrentWriteError` (exit code 4, which Airflow retries from a fresh plan)."""
    spark = new.sparkSession
    if not exists(spark, table, lake):
        replace_tagged(new, table, lake, day)
        return
    deleted = gone.select(*keys).withColumn("_delete", F.lit(True))
    source = new.withColumn("_delete", F.lit(False)).unionByName(deleted, allowMissingColumns=True)
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    assign = ", ".join(f"`{c}` = s.`{c}`" for c in new.columns)
    names = ", ".join(f"`{c}`" for c in new.columns)
    values = ", ".join(f"s.`{c}`" for c in new.columns)

    empty = source.limit(1).count() == 0

    def write() -> None:
        view = f"setlist_merge_{table.layer}_{table.name}_{next(_VIEWS)}"
        source.createOrReplaceTempView(view)
        try:
            with session_conf(spark, USER_METADATA, f"{TAG}{day}"):
                if empty:  # a MERGE of nothing commits nothing: the day is still recorded, by a commit of its own
                    spark.sql(
                        f"ALTER TABLE {sql_path(table.path(lake))} SET TBLPROPERTIES ('setlist.as_of_date' = '{day}')"
                    ).collect()
                    return
                spark.sql(
                    f"MERGE INTO {sql_path(table.path(lake))} AS t USING {view} AS s ON {on}"
                    f" WHEN MATCHED AND s._delete THEN DELETE WHEN MATCHED THEN UPDATE SET {assign}"
                    f" WHEN NOT MATCHED AND NOT s._delete THEN INSERT ({names}) VALUES ({values})"
                ).collect()
        finally:
            spark.catalog.dropTempView(view)

    with faults.at(table.sql_name, table.path(lake)):
        _committing(table, write, attempts=1)  # its rows were computed from the version another writer replaced


def register_tables(
    spark: SparkSession, lake: str, only: Sequence[Table] = ALL_TABLES, views: Mapping[str, str] | None = None
) -> list[str]:
    """Register existing lake tables by their SQL names (``gold.recommendations``) in this session; a table merged
    on read as the view ``views`` gives for its name (replaced on every call), or not at all without one.

    Each registration reads the table's Delta log, so callers that know their query pass ``only``.
    """
    registered = []
    for table in only:
        view = (views or {}).get(table.sql_name)
        if not (view if table.merged_on_read else exists(spark, table, lake)):
            continue
        if not spark.catalog.databaseExists(table.layer):
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {table.layer}")
        if view:
            spark.sql(f"CREATE OR REPLACE VIEW {table.sql_name} AS {view}")
        else:
            spark.sql(f"CREATE TABLE IF NOT EXISTS {table.sql_name} USING delta LOCATION '{table.path(lake)}'")
        registered.append(table.sql_name)
    return registered
