"""Lists and checks the raw CSV files of one landing day, through Hadoop's file system (local or s3a).

Reads: ``<lake>/landing/<source>/date=YYYY-MM-DD/*.csv`` (listing and header lines only). Writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class LandingFile:
    path: str
    size: int
    header: list[str] | None  # None: the file is empty


def _fs_path(spark: SparkSession, path: str):  # type: ignore[no-untyped-def]
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p, p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[union-attr]


def _header(spark: SparkSession, path: str) -> list[str] | None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    p, fs = _fs_path(spark, path)
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(fs.open(p), "UTF-8"))
    try:
        line = reader.readLine()
    finally:
        reader.close()
    if line is None:
        return None
    return [c.strip().strip('"') for c in line.lstrip("\ufeff").rstrip("\r").split(",")]


def path_exists(spark: SparkSession, path: str) -> bool:
    p, fs = _fs_path(spark, path)
    return bool(fs.exists(p))


def list_files(spark: SparkSession, directory: str) -> list[LandingFile]:
    """The CSV files of one landing folder, sorted by path; empty when the folder does not exist."""
    p, fs = _fs_path(spark, directory)
    if not fs.exists(p):
        return []
    statuses = fs.globStatus(spark.sparkContext._jvm.org.apache.hadoop.fs.Path(f"{directory}/*.csv"))  # type: ignore[union-attr]
    files = sorted((s.getPath().toString(), int(s.getLen())) for s in (statuses or []))
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
