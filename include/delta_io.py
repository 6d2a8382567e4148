"""Every Delta read and write in Setlist goes through here, so that each write is scoped and atomic.

Reads and writes the Delta tables named in :mod:`include.tables` under a lake root. Writes are either a
``replaceWhere`` overwrite of one partition value or a ``MERGE`` on keys; both commit atomically, so a
reader sees the table before or after a run, never between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StructType

from include.tables import ALL_TABLES, Table

ROW_GROUP_CONF = "parquet.block.size"
LISTING_CONF = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def exists(spark: SparkSession, table: Table, lake: str) -> bool:
    return bool(DeltaTable.isDeltaTable(spark, table.path(lake)))


def version(spark: SparkSession, table: Table, lake: str) -> int:
    """The table's current Delta version (what a run read, recorded so it can be read again by time travel)."""
    row = DeltaTable.forPath(spark, table.path(lake)).history(1).select("version").first()
    return int(row[0]) if row else -1


def read(spark: SparkSession, table: Table, lake: str) -> DataFrame:
    return spark.read.format("delta").load(table.path(lake))


def read_or_empty(spark: SparkSession, table: Table, lake: str, schema: StructType | str) -> DataFrame:
    """The table, or an empty frame of ``schema`` (a StructType or DDL string) before its first write."""
    if exists(spark, table, lake):
        return read(spark, table, lake)
    return spark.createDataFrame([], schema)


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
    builder = DeltaTable.forPath(spark, table.path(lake)).optimize()
    if where:
        builder = builder.where(where)
    with session_conf(spark, ROW_GROUP_CONF, table.row_group_bytes):
        result = builder.executeZOrderBy(table.cluster_by) if table.cluster_by else builder.executeCompaction()
    metrics = result.first()["metrics"]  # type: ignore[index]
    return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])


def vacuum(spark: SparkSession, table: Table, lake: str, retention_hours: int) -> None:
    """Delete files no table version within ``retention_hours`` needs (time travel stays possible that far)."""
    # VACUUM lists files with as many tasks as this setting (default 10,000): minutes for a small table.
    with session_conf(spark, LISTING_CONF, spark.sparkContext.defaultParallelism * 2):
        DeltaTable.forPath(spark, table.path(lake)).vacuum(float(retention_hours))


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
    if not exists(spark, table, lake):
        df.write.format("delta").mode("errorifexists").save(table.path(lake))
        return df.count()
    target = DeltaTable.forPath(spark, table.path(lake))
    compared = [*keys, *([c for c in df.columns if c not in keys and c != newer_than] if update else [])]
    maps = {f.name for f in df.schema.fields if isinstance(f.dataType, MapType)}

    def value(side: str, c: str) -> Column:  # maps have no equality in Spark SQL: compare their JSON
        return F.to_json(F.col(f"{side}.`{c}`")) if c in maps else F.col(f"{side}.`{c}`")

    same = [value("s", c).eqNullSafe(value("t", c)) for c in compared]
    pending = df.alias("s").join(target.toDF().alias("t"), same, "left_anti").cache()
    count = pending.count()
    if count:
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        builder = target.alias("t").merge(pending.alias("s"), on)
        if update:
            builder = builder.whenMatchedUpdateAll(
                condition=f"s.`{newer_than}` >= t.`{newer_than}`" if newer_than else None
            )
        builder.whenNotMatchedInsertAll().execute()
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
