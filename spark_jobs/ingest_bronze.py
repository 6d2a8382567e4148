"""Landing CSV -> bronze: raw rows exactly as they arrived, plus lineage columns.

Reads ``<lake>/landing/{interactions,tracks}/date=<run_date>/*.csv``.
Writes ``bronze.interactions`` and ``bronze.tracks``, partition ``_run_date = <run_date>`` (replaceWhere).
Lines that do not parse are kept whole in ``_corrupt_record``; nothing is dropped here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from include import delta_io, jobs, schemas, tables
from include.landing import header_problems, list_files

SOURCES: dict[str, tuple[tables.Table, tuple[str, ...], StructType]] = {
    "interactions": (tables.BRONZE_INTERACTIONS, schemas.INTERACTION_COLUMNS, schemas.RAW_INTERACTIONS),
    "tracks": (tables.BRONZE_TRACKS, schemas.TRACK_COLUMNS, schemas.RAW_TRACKS),
}


def read_raw_csv(spark: SparkSession, paths: list[str], schema: StructType) -> DataFrame:
    """RFC 4180 CSV as strings; a line that does not fit the schema keeps its text in ``_corrupt_record``."""
    return (
        spark.read.schema(schema)
        .option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", schemas.CORRUPT_RECORD)
        .option("multiLine", True)
        .option("quote", '"')
        .option("escape", '"')
        .option("encoding", "UTF-8")
        .csv(paths)
        .withColumn(schemas.SOURCE_FILE, F.col("_metadata.file_path"))
    )


def transform(raw: DataFrame, run_date: str) -> DataFrame:
    """Add ingestion lineage; the raw columns are kept as they are."""
    return raw.withColumn(schemas.INGESTED_AT, F.current_timestamp()).withColumn(
        schemas.BRONZE_RUN_DATE, F.lit(run_date)
    )


def ingest(spark: SparkSession, ctx: jobs.JobContext, source: str) -> None:
    table, columns, schema = SOURCES[source]
    folder = tables.landing_dir(ctx.settings.lake, source, ctx.run_date)
    files = list_files(spark, folder)
    if not files and source == "interactions":
        raise jobs.LandingError(f"no interactions files for {ctx.ds} in {folder}")
    readable = []
    for f in files:
        if f.header is None:
            ctx.log(f"{source}: {f.path} is empty, skipped (0 rows)")
            continue
        problem = header_problems(f.header, columns)
        if problem:
            raise jobs.LandingError(f"{source} file {f.path} does not match the contract: {problem}")
        readable.append(f.path)
    if readable:
        bronze = transform(read_raw_csv(spark, readable, schema), ctx.ds)
    else:
        bronze = spark.createDataFrame([], schema).withColumn(schemas.SOURCE_FILE, F.lit(None).cast("string"))
        bronze = transform(bronze, ctx.ds)
    bronze = bronze.cache()
    from expectations import suites
    from include.quality import gate

    gate(bronze, suites.bronze(source, columns))
    delta_io.overwrite_partition(bronze, table, ctx.settings.lake, ctx.ds)
    stats = bronze.agg(F.count("*").alias("rows"), F.count(schemas.CORRUPT_RECORD).alias("corrupt")).first()
    assert stats is not None
    ctx.log(
        f"{source}: {stats['rows']} rows from {len(readable)} files -> {table.sql_name}"
        f" ({stats['corrupt']} unparsable, kept)"
    )
    bronze.unpersist()


def ingest_all(spark: SparkSession, ctx: jobs.JobContext) -> None:
    for source in SOURCES:
        ingest(spark, ctx, source)


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("ingest_bronze", __doc__ or "", ingest_all, argv)


if __name__ == "__main__":
    sys.exit(main())
