"""ALS fit time with the BLAS Spark finds: Debian's OpenBLAS (``libblas.so.3``) or the Java fallback.

Usage: .venv/bin/python bench/bench_als_blas.py --users 20000 --tracks 50000 --ratings 1000000 [--repeats 3]

Fits Setlist's implicit ALS (rank 20, 10 iterations, alpha 10, one block per core, the jobs' own estimator)
on generated play counts (seed 42) in a classic ``local[*]`` session with the jobs' configuration, and prints
which BLAS and LAPACK implementations Spark loaded and each fit's wall time. Run it once before and once
after ``make blas`` to compare. Writes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.core.config import load_settings
from include.lake.spark import get_spark
from include.models import als


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--tracks", type=int, default=50_000)
    p.add_argument("--ratings", type=int, default=1_000_000)
    p.add_argument("--rank", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    settings = load_settings(spark_mode="submit", rank=args.rank)
    spark = get_spark("setlist-bench-blas", settings)
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    assert jvm is not None
    netlib = jvm.dev.ludovic.netlib
    blas = netlib.blas.BLAS.getInstance().getClass().getName()
    lapack = netlib.lapack.LAPACK.getInstance().getClass().getName()

    rng = np.random.default_rng(42)
    users = rng.integers(0, args.users, args.ratings)
    tracks = (rng.zipf(1.3, args.ratings) - 1) % args.tracks  # a long tail, as plays are
    plays = rng.integers(1, 20, args.ratings).astype(float)
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    pairs = pd.DataFrame({als.USER: users.astype("int32"), als.TRACK: tracks.astype("int32"), als.RATING: plays})
    frame = spark.createDataFrame(pairs).groupBy(als.USER, als.TRACK).agg(F.sum(als.RATING).alias(als.RATING))
    frame = frame.localCheckpoint()
    rows = frame.count()
    params = als.AlsParams.of(settings)
    blocks = spark.sparkContext.defaultParallelism
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        als.estimator(params, blocks).fit(frame).userFactors.count()
        times.append(time.perf_counter() - start)
    print(f"# {dt.date.today()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"BLAS {blas}, LAPACK {lapack}")
    print(
        f"implicit ALS rank {args.rank} x {params.max_iter} iterations on {rows:,} (user, track) rows: "
        f"fits {', '.join(f'{t:.1f}' for t in times)} s, median {statistics.median(times):.1f} s"
    )
    spark.stop()


if __name__ == "__main__":
    main()
