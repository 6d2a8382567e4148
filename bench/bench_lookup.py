"""Single-user lookups on gold.recommendations through delta-rs (no JVM): cold start and warm latency.

Usage: .venv/bin/python bench/bench_lookup.py --users 100000 [--k 10 --lookups 2000]
Writes USERS x K recommendation rows into ``bench/results/lookup-lake`` (ignored) with the recommend job's
own layout and writer (Spark, Delta), then measures:
- cold: a fresh Python process that imports ``include.serving.lookup`` and returns one user's list (wall time of the
  whole process, interpreter start included), several times;
- warm: in one process, ``get_recommendations`` for random users after the first call: p50, p99, max.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.core import tables
from include.core.config import load_settings
from include.lake import delta_io
from include.serving import lookup
from spark_jobs.recommend import clustered_by_user

RUN_DATE = "2026-11-01"


def write_table(lake: str, users: int, k: int) -> int:
    from pyspark.sql import functions as F

    from include.lake.spark import get_spark

    spark = get_spark("setlist-bench-lookup", load_settings(lake=lake), log_level="ERROR")
    rows = (
        spark.range(users * k)
        .select(
            F.format_string("user_%07d", (F.col("id") / k).cast("long")).alias("user_id"),
            F.format_string("trk_%07d", F.pmod(F.col("id") * 7919, 50_000)).alias("track_id"),
            (F.col("id") % k + 1).cast("int").alias("rank"),
            (1.0 / (F.col("id") % k + 1)).alias("score"),
            F.lit("als").alias("source"),
            F.lit("als-implicit-bench").alias("model_version"),
            F.lit("bench").alias("run_id"),
            F.lit(RUN_DATE).alias("run_date"),
            F.current_timestamp().alias("generated_at"),
        )
        .select([F.col(f.name).cast(f.dataType) for f in tables.GOLD_RECOMMENDATIONS.declared.fields])
    )
    n = users * k
    delta_io.overwrite_partition(clustered_by_user(rows, n), tables.GOLD_RECOMMENDATIONS, lake, RUN_DATE)
    files = len(spark.read.format("delta").load(tables.GOLD_RECOMMENDATIONS.path(lake)).inputFiles())
    spark.stop()
    return files


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--lookups", type=int, default=2000)
    p.add_argument("--cold-runs", type=int, default=5)
    args = p.parse_args()

    lake = ROOT / "bench" / "results" / "lookup-lake"
    shutil.rmtree(lake, ignore_errors=True)
    started = time.monotonic()
    files = write_table(str(lake), args.users, args.k)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"table: {args.users} users x {args.k} = {args.users * args.k} rows in {files} files"
        f" (written in {time.monotonic() - started:.0f}s)"
    )

    rng = random.Random(7)
    cold = []
    for _ in range(args.cold_runs):
        user = f"user_{rng.randrange(args.users):07d}"
        code = (
            "from include.serving.lookup import get_recommendations; "
            f"assert get_recommendations({user!r}, lake={str(lake)!r})"
        )
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        cold.append(time.perf_counter() - t)

    lookup.get_recommendations("user_0000000", args.k, str(lake))  # opens the table
    warm = []
    for _ in range(args.lookups):
        user = f"user_{rng.randrange(args.users):07d}"
        t = time.perf_counter()
        got = lookup.get_recommendations(user, args.k, str(lake))
        warm.append((time.perf_counter() - t) * 1000)
        assert len(got) == args.k and got[0]["user_id"] == user
    print("| measure | value |")
    print("|---|---|")
    print(f"| cold start, median of {args.cold_runs} (s) | {statistics.median(cold):.2f} |")
    print(f"| warm lookup p50 (ms) | {percentile(warm, 50):.2f} |")
    print(f"| warm lookup p99 (ms) | {percentile(warm, 99):.2f} |")
    print(f"| warm lookup max (ms) | {max(warm):.2f} |")
    print(f"| lookups | {args.lookups} random users |")
    print(f"date: {dt.date.today()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
