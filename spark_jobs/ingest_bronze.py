"""Landing CSV -> bronze: raw rows exactly as they arrived, plus lineage columns.

Reads ``<lake>/landing/{interactions,tracks}/date=<run_date>/*.csv``, only from a folder that holds its
completeness marker (``_SUCCESS``); a manifest in the marker must match the files and their row counts.
Writes ``bronze.interactions`` and ``bronze.tracks``, partition ``_run_date = <run_date>`` (replaceWhere).
Lines that do not parse are kept whole in ``_corrupt_record``; nothing is dropped here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from include.core import schemas, tables
from include.core.schemas import raw_text
from include.lake import delta_io, jobs
from include.lake.landing import (
    LandingFile,
    file_name,
    header_problems,
    list_files,
    manifest_problems,
    parse_manifest,
    path_exists,
    read_marker,
)
from include.lake.spark import cached, fit_to_input

BYTES_PER_EVENT = 90  # a contract row is about this long: the day's size in events, estimated from its files

# Each source's bronze table, its required columns and the optional ones a file may add after them.
SOURCES: dict[str, tuple[tables.Table, tuple[str, ...], tuple[str, ...]]] = {
    "interactions": (tables.BRONZE_INTERACTIONS, schemas.INTERACTION_COLUMNS, schemas.OPTIONAL_INTERACTION_COLUMNS),
    "tracks": (tables.BRONZE_TRACKS, schemas.TRACK_COLUMNS, ()),
}


def bronze_columns(source: str) -> tuple[str, ...]:
    """Every column of the source's bronze rows: an optional column a file lacks is null there."""
    _, required, optional = SOURCES[source]
    return (*required, *optional)


def read_raw_csv(spark: SparkSession, paths: list[str], schema: StructType, max_field_chars: int = -1) -> DataFrame:
    """RFC 4180 CSV as strings; a line that does not fit the schema keeps its text in ``_corrupt_record``. A
    field longer than ``max_field_chars`` stops the read (see :func:`refused_when_unreadable`)."""
    return (
        spark.read.schema(schema)
        .option("maxCharsPerColumn", max_field_chars)
        .option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", schemas.CORRUPT_RECORD)
        .option("multiLine", True)
        .option("quote", '"')
        .option("escape", '"')
        .option("encoding", "UTF-8")
        .csv(paths)
        .withColumn(schemas.SOURCE_FILE, F.col("_metadata.file_path"))
        # multiLine CSV is read whole per file, in order, so the id orders each file's records.
        .withColumn("_order", F.monotonically_increasing_id())
        .withColumn(
            schemas.SOURCE_ROW,
            F.row_number().over(Window.partitionBy(schemas.SOURCE_FILE).orderBy("_order")).cast("long"),
        )
        .drop("_order")
    )


def transform(raw: DataFrame, run_date: str) -> DataFrame:
    """Add ingestion lineage; the raw columns are kept as they are."""
    return raw.withColumn(schemas.INGESTED_AT, F.current_timestamp()).withColumn(
        schemas.BRONZE_RUN_DATE, F.lit(run_date)
    )


def land(spark: SparkSession, ctx: jobs.JobContext, source: str) -> tuple[DataFrame, int]:
    """The day's landing files of one source as a bronze frame (cached, with the ``_raw`` text the checks
    read), and how many files were read.

    Stops with a clear message on schema drift or a missing day (unless ``missing_day=empty``).
    """
    _, required, optional = SOURCES[source]
    columns = bronze_columns(source)
    folder = tables.landing_dir(ctx.settings.lake, source, ctx.run_date)
    files = list_files(spark, folder)
    manifest = complete(spark, folder, ctx.settings.landing_marker, bool(files))
    if source == "interactions":
        fit_to_input(spark, sum(f.size for f in files) // BYTES_PER_EVENT, ctx.settings)
    if not files and source == "interactions":
        if ctx.settings.missing_day == "fail":
            raise jobs.LandingError(
                f"no interactions files for {ctx.ds} in {folder} (set SETLIST_MISSING_DAY=empty to write an empty day)"
            )
        ctx.log(f"WARNING: no interactions files in {folder}; writing an empty day (missing_day=empty)")
    readable: dict[tuple[str, ...], list[str]] = {}  # files by header: each header is read with its own schema
    limit_mb = ctx.settings.landing_max_file_mb
    for f in files:
        if f.size > limit_mb * 2**20:
            raise jobs.LandingError(
                f"{source}: {f.path} is {f.size / 2**20:,.0f} MB, over the {limit_mb} MB a landing file may be"
                " (SETLIST_LANDING_MAX_FILE_MB); split it into several files"
            )
        if f.header is None:
            ctx.log(f"{source}: {f.path} is empty, skipped (0 rows)")
            continue
        problem = header_problems(f.header, required, optional)
        if problem:
            raise jobs.LandingError(f"{source} file {f.path} does not match the contract: {problem}")
        readable.setdefault(tuple(f.header), []).append(f.path)
    everything = [*columns, schemas.CORRUPT_RECORD, schemas.SOURCE_FILE, schemas.SOURCE_ROW]
    raw = spark.createDataFrame([], schemas.raw_schema(columns)).select(
        "*",
        F.lit(None).cast("string").alias(schemas.SOURCE_FILE),
        F.lit(None).cast("long").alias(schemas.SOURCE_ROW),
    )
    for header, paths in readable.items():
        part = read_raw_csv(spark, paths, schemas.raw_schema(header), ctx.settings.landing_max_field_kb * 1024)
        missing = [F.lit(None).cast("string").alias(c) for c in columns if c not in header]
        raw = raw.unionByName(part.select("*", *missing).select(*everything))
    # The raw-text column the whole-row checks read is computed once, in the pass that fills the cache.
    with refused_when_unreadable(source, ctx.settings.landing_max_field_kb):
        bronze = cached(transform(raw, ctx.ds).withColumn("_raw", raw_text(columns)))
    if manifest is not None and (problem := manifest_problems(manifest, rows_by_file(bronze, files))):
        raise jobs.LandingError(f"{source}: {folder}/{ctx.settings.landing_marker} does not match: {problem}")
    return bronze, sum(len(paths) for paths in readable.values())


def rows_by_file(bronze: DataFrame, files: list[LandingFile]) -> dict[str, int]:
    """Rows read per landing file, by file name (0 for an empty one)."""
    read = {file_name(f.path): 0 for f in files}
    for r in bronze.where(F.col(schemas.SOURCE_FILE).isNotNull()).groupBy(schemas.SOURCE_FILE).count().collect():
        read[file_name(str(r[0]))] = int(r[1])
    return read


@contextmanager
def refused_when_unreadable(source: str, max_field_kb: int) -> Iterator[None]:
    """Spark's failure to read a landing file (a field over the limit, a file that vanished) as one line."""
    try:
        yield
    except Exception as exc:  # Spark's read errors reach a classic driver and a Connect client as different types
        text = str(exc)
        if "FAILED_READ_FILE" not in text:
            raise
        found = re.search(r"reading file (\S+?)\.?\s", text)
        where = found.group(1) if found else "a landing file"
        if "exceeds the maximum number of characters" in text:
            why = f"a field is longer than {max_field_kb} KB (SETLIST_LANDING_MAX_FIELD_KB)"
        else:
            why = f"{text.strip().splitlines()[0]} (one cause: a field longer than {max_field_kb} KB)"
        raise jobs.LandingError(f"{source}: cannot read {where}: {why}") from None


def complete(spark: SparkSession, folder: str, marker: str, has_files: bool) -> dict[str, int] | None:
    """Refuse a landing folder without its completeness marker (its files may still be being written); return
    the marker's manifest, if it holds one. A day with no folder at all is the missing-day policy's."""
    if not marker or not (has_files or path_exists(spark, folder)):
        return None
    text = read_marker(folder, marker)
    if text is None:
        raise jobs.LandingError(
            f"{folder} has no {marker}: a landing folder is read only once its completeness marker is there"
            " (written last by whoever lands the day; SETLIST_LANDING_MARKER names it)"
        )
    try:
        return parse_manifest(text, f"{folder}/{marker}")
    except ValueError as exc:
        raise jobs.LandingError(str(exc)) from None


def ingest_all(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from expectations import suites
    from include.quality import runner as quality

    landed = {source: land(spark, ctx, source) for source in SOURCES}
    stats = {}
    for source, (bronze, _) in landed.items():  # the pass that reads the files and fills the cache
        row = bronze.agg(F.count("*").alias("rows"), F.count(schemas.CORRUPT_RECORD).alias("corrupt")).first()
        assert row is not None
        stats[source] = row
    results = []
    for source, (bronze, _) in landed.items():
        suite = suites.bronze(source, bronze_columns(source), ctx.settings.dq_severity)
        results += quality.validate(bronze, suite)
    quality.record(spark, ctx, results)  # one failed check stops the day before either table is written
    for source, (bronze, n_files) in landed.items():
        table = SOURCES[source][0]
        delta_io.overwrite_partition(bronze.drop("_raw"), table, ctx.settings.lake, ctx.ds)
        ctx.log(
            f"{source}: {stats[source]['rows']} rows from {n_files} files -> {table.sql_name}"
            f" ({stats[source]['corrupt']} unparsable, kept)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("ingest_bronze", __doc__ or "", ingest_all, argv)


if __name__ == "__main__":
    sys.exit(main())
