"""Lists and checks the raw CSV files of one landing day, through Spark's own file sources (local or s3a),
and whether the day is complete: its folder holds the completeness marker (``settings.landing_marker``,
``_SUCCESS`` by default), written last by whoever lands the day; a marker that holds a JSON manifest
(``{"files": {"part-00000.csv": rows, ...}}``) also names every file and its row count.

Reads: ``<lake>/landing/<source>/date=YYYY-MM-DD/*.csv`` (the listing, and each file's first line only) and
the marker. Writes nothing. Everything Spark reads goes through the DataFrame API, so a Spark Connect client
lists the files where the Spark driver sees them. The marker is read through pyarrow's file systems (Spark's
file sources skip ``_`` files), in the jobs and in the DAG's sensor alike.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from pyarrow import fs

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


def header_problems(header: list[str], expected: tuple[str, ...], optional: tuple[str, ...] = ()) -> str | None:
    """A message naming missing, extra or reordered columns, or None when the header is the contract: the
    ``expected`` columns, then the first n of the ``optional`` ones."""
    if any(tuple(header) == (*expected, *optional[:n]) for n in range(len(optional) + 1)):
        return None
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in (*expected, *optional)]
    if missing or extra:
        return f"missing columns {missing}, unexpected columns {extra}"
    return f"columns out of order: expected {list(expected)}, got {header}"


def read_marker(folder: str, marker: str) -> str | None:
    """The marker file's text ("" when empty), or None when the folder has no marker. Read through pyarrow's
    file systems, not Spark's: Spark's file sources skip files whose names start with ``_`` or ``.``."""
    filesystem, path = _filesystem(f"{folder}/{marker}")
    if filesystem.get_file_info(path).type != fs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return bytes(stream.read()).decode("utf-8", errors="replace")


def parse_manifest(text: str, where: str) -> dict[str, int] | None:
    """The manifest a marker holds (file name -> rows), None for an empty marker; ValueError when malformed."""
    if not text.strip():
        return None
    try:
        files = json.loads(text)["files"]
        manifest = {str(name): int(rows) for name, rows in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f'{where}: expected empty, or JSON {{"files": {{"name.csv": rows}}}}') from None
    return manifest


def manifest_problems(manifest: dict[str, int], rows_by_file: dict[str, int]) -> str | None:
    """What differs between a manifest and the files read (by file name: rows), or None."""
    missing = sorted(set(manifest) - set(rows_by_file))
    unlisted = sorted(set(rows_by_file) - set(manifest))
    if missing or unlisted:
        return f"files listed but missing {missing}, files present but not listed {unlisted}"
    counts = {n: (manifest[n], rows_by_file[n]) for n in sorted(manifest) if manifest[n] != rows_by_file[n]}
    if counts:
        return "row counts differ (listed, read): " + ", ".join(f"{n} {a} vs {b}" for n, (a, b) in counts.items())
    return None


def file_name(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def _filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's file system for a local path or a URI it knows (``s3a://`` read as ``s3://``)."""
    if "://" not in uri:
        return fs.LocalFileSystem(), uri
    if uri.startswith("s3a://"):
        uri = "s3://" + uri.removeprefix("s3a://")
    if uri.startswith("file://"):
        return fs.LocalFileSystem(), uri.removeprefix("file://")
    return fs.FileSystem.from_uri(uri)  # type: ignore[no-any-return]
