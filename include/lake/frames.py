"""DataFrame helpers every job shares. Reads and writes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def first_n(
    df: DataFrame, partition_by: str | Sequence[str], order_by: Sequence[Column | str], n: int, rank: str | None = None
) -> DataFrame:
    """The first ``n`` rows of each ``partition_by`` group in ``order_by`` order (exactly ``n``: ties are broken
    by position, so the order should end on a unique column); with ``rank``, their 1-based position in it."""
    keys = [partition_by] if isinstance(partition_by, str) else list(partition_by)
    column = rank or "_n"
    numbered = df.withColumn(column, F.row_number().over(Window.partitionBy(*keys).orderBy(*order_by)))
    kept = numbered.where(F.col(column) <= n)
    return kept if rank else kept.drop(column)


def with_missing(df: DataFrame, columns: Mapping[str, str]) -> DataFrame:
    """``df`` with each of ``columns`` (name -> SQL type) it lacks added as null: a table or partition written
    before the column existed reads like a new one."""
    for name, kind in columns.items():
        if name not in df.columns:
            df = df.withColumn(name, F.lit(None).cast(kind))
    return df
