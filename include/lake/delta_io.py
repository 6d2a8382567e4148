"""Every Delta read and write in Setlist goes through here, so that each write is scoped and atomic.

Reads and writes the Delta tables named in :mod:`include.core.tables` under a lake root. Writes are either a
``replaceWhere`` overwrite of one partition value or a ``MERGE`` on keys; both commit atomically, so a
reader sees the table before or after a run, never between. Table operations are DataFrame writes and Delta
SQL (``MERGE INTO``, ``OPTIMIZE``, ``VACUUM``, ``DESCRIBE HISTORY``), never the ``DeltaTable`` Python API,
which has no Spark Connect implementation: the same code runs in a Connect client and a classic driver.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StructType

from include.core.tables import ALL_TABLES, Table

ROW_GROUP_CONF = "parquet.block.size"
_VIEWS = itertools.count()  # names of the session's temporary MERGE sources
LISTING_CONF = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def _sql_path(path: str) -> str:
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
    row = spark.sql(f"DESCRIBE HISTORY {_sql_path(table.path(lake))} LIMIT 1").select("version").first()
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
    predicate = f"{table.partition_by} = '{value}'" + (f" AND ({where})" if where else "")
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    # Delta takes the Parquet row group size from the session, not from write options.
    with session_conf(df.sparkSession, ROW_GROUP_CONF, table.row_group_bytes):
        writer.partitionBy(table.partition_by).save(table.path(lake))


def optimize(spark: SparkSession, table: Table, lake: str, where: str | None = None) -> tuple[int, int]:
    """Compact small files in the rows matching ``where`` (Z-ordered by the table's ``cluster_by``, in its
    row group size); one atomic commit with the same rows. Returns (files removed, files added)."""
    statement = f"OPTIMIZE {_sql_path(table.path(lake))}"
    if where:
        statement += f" WHERE {where}"
    if table.cluster_by:
        statement += f" ZORDER BY (`{table.cluster_by}`)"
    with session_conf(spark, ROW_GROUP_CONF, table.row_group_bytes):
        row = spark.sql(statement).first()
    assert row is not None
    metrics = row["metrics"]
    return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])


def vacuum(spark: SparkSession, table: Table, lake: str, retention_hours: int) -> None:
    """Delete files no table version within ``retention_hours`` needs (time travel stays possible that far)."""
    from include.lake.spark import parallelism

    # VACUUM lists files with as many tasks as this setting (default 10,000): minutes for a small table.
    with session_conf(spark, LISTING_CONF, parallelism(spark) * 2):
        spark.sql(f"VACUUM {_sql_path(table.path(lake))} RETAIN {int(retention_hours)} HOURS").collect()


def merge(
    df: DataFrame,
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
    """
    spark = df.sparkSession
    path = table.path(lake)
    if not exists(spark, table, lake):
        df.write.format("delta").mode("error").save(path)
        return df.count()
    compared = [*keys, *([c for c in df.columns if c not in keys and c != newer_than] if update else [])]
    maps = {f.name for f in df.schema.fields if isinstance(f.dataType, MapType)}

    def value(side: str, c: str) -> Column:  # maps have no equality in Spark SQL: compare their JSON
        return F.to_json(F.col(f"{side}.`{c}`")) if c in maps else F.col(f"{side}.`{c}`")

    same = [value("s", c).eqNullSafe(value("t", c)) for c in compared]
    pending = df.alias("s").join(read(spark, table, lake).alias("t"), same, "left_anti").cache()
    count = pending.count()
    if count:
        view = f"setlist_merge_{table.layer}_{table.name}_{next(_VIEWS)}"
        pending.createOrReplaceTempView(view)
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        statement = f"MERGE INTO {_sql_path(path)} AS t USING {view} AS s ON {on}"
        if update:
            newer = f" AND s.`{newer_than}` >= t.`{newer_than}`" if newer_than else ""
            statement += f" WHEN MATCHED{newer} THEN UPDATE SET *"
        spark.sql(statement + " WHEN NOT MATCHED THEN INSERT *").collect()
        spark.catalog.dropTempView(view)
    pending.unpersist()
    return count


def register_tables(spark: SparkSession, lake: str, only: Sequence[Table] = ALL_TABLES) -> list[str]:
    """Register existing lake tables by their SQL names (``gold.recommendations``) in this session.

    Each registration reads the table's Delta log, so callers that know their query pass ``only``.
    """
    registered = []
    for table in only:
        if not exists(spark, table, lake):
            continue
        if not spark.catalog.databaseExists(table.layer):
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {table.layer}")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table.sql_name} USING delta LOCATION '{table.path(lake)}'")
        registered.append(table.sql_name)
    return registered
