"""Lists and checks the raw CSV files of one landing day, through Spark's own file sources (local or s3a).

Reads: ``<lake>/landing/<source>/date=YYYY-MM-DD/*.csv`` (the listing, and each file's first line only).
Writes nothing. Everything goes through the DataFrame API, so a Spark Connect client lists the files where
the Spark driver sees them, exactly as a classic driver does.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


@dataclass(frozen=True)
class LandingFile:
    path: str
    size: int
    header: list[str] | None  # None: the file is empty


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` (a file or a folder) exists: resolving a file source fails on a missing path."""
    try:
        spark.read.format("binaryFile").option("pathGlobFilter", "_none_").load(path).schema  # noqa: B018
    except AnalysisException:
        return False
    return True


def _header(spark: SparkSession, path: str) -> list[str] | None:
    """The file's first line as column names (a BOM and quotes removed); None for an empty file."""
    first = spark.read.text(path).limit(1).collect()
    if not first:
        return None
    line = str(first[0][0])
    return [c.strip().strip('"') for c in line.lstrip("\ufeff").rstrip("\r").split(",")]


def list_files(spark: SparkSession, directory: str) -> list[LandingFile]:
    """The CSV files of one landing folder, sorted by path; empty when the folder does not exist."""
    if not path_exists(spark, directory):
        return []
    # binaryFile reads a file's bytes only when its content column is selected: this is a listing.
    listing = (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", "*.csv")
        .load(directory)
        .select("path", F.col("length").cast("long"))
        .collect()
    )
    files = sorted((str(r["path"]), int(r["length"])) for r in listing)
    return [LandingFile(path, size, _header(spark, path) if size else None) for path, size in files]


def header_problems(header: list[str], expected: tuple[str, ...]) -> str | None:
    """A message naming missing, extra or reordered columns, or None when the header is the contract."""
    if tuple(header) == expected:
        return None
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    if missing or extra:
        return f"missing columns {missing}, unexpected columns {extra}"
    return f"columns out of order: expected {list(expected)}, got {header}"
