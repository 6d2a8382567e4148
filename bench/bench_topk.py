"""Exact top-K and content neighbours against this machine's BLAS limit.

Usage: .venv/bin/python bench/bench_topk.py --users 100000 --tracks 200000 --rank 32
       [--k 10 --history 100 --new-tracks 50000 --played-tracks 200000]

Measures, with random factors (seed 42) and the recommend job's own kernel (``include.models.topk``):
- the limit: GFLOP/s of one large DGEMM (and SGEMM, which the kernel uses) with every core;
- top-K: ``Ranker`` over USERS users x TRACKS tracks of rank RANK, each user with HISTORY played tracks
  masked, split over one worker process per core as Spark's Python workers run it; the ratio is its wall
  time over ``users x tracks x rank x 2 / DGEMM GFLOP/s``;
- content cold start: the ``Neighbours`` of NEW_TRACKS new tracks among PLAYED_TRACKS played ones in the
  audio-feature space (9 dimensions), the same way.

Nothing is written; no Spark session is started (the kernel is what runs inside ``mapInArrow``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # workers: one thread each, as Spark's are configured
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.core import schemas
from include.models import topk

FEATURES = len(schemas.AUDIO_FEATURES_UNIT) + 2  # tempo and loudness


def _gemm(dtype: type, n: int = 4096) -> float:
    """GFLOP/s of an n x n x n product in one process (its BLAS threads: every core)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    a @ b
    start = time.perf_counter()
    a @ b
    return 2 * n**3 / (time.perf_counter() - start) / 1e9


def gemm_limit(dtype: str) -> float:
    """Run in a child process with BLAS threads = cores (the parent keeps one thread for the workers)."""
    import subprocess

    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(os.cpu_count() or 1)}
    code = f"import bench_topk, numpy as np; print(max(bench_topk._gemm(np.{dtype}) for _ in range(3)))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=Path(__file__).parent, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


_WORK: topk.Ranker | topk.Neighbours | None = None


def _init(work: topk.Ranker | topk.Neighbours) -> None:
    global _WORK
    _WORK = work


def _run(batch: pa.RecordBatch) -> int:
    assert _WORK is not None
    return sum(out.num_rows for out in _WORK(iter([batch])))


def parallel(work: topk.Ranker | topk.Neighbours, batches: list[pa.RecordBatch]) -> tuple[float, int]:
    """Wall seconds and rows out for ``work`` over ``batches``, one worker process per core."""
    with ProcessPoolExecutor(os.cpu_count(), initializer=_init, initargs=(work,)) as pool:
        list(pool.map(_run, batches[:1]))  # workers started and the work unpickled before the clock
        start = time.perf_counter()
        rows = sum(pool.map(_run, batches))
        return time.perf_counter() - start, rows


def user_batches(users: int, tracks: int, rank: int, history: int, per: int) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(1)
    out = []
    for start in range(0, users, per):
        n = min(per, users - start)
        seen = [np.sort(rng.choice(tracks, history, replace=False)) for _ in range(n)]
        out.append(
            pa.RecordBatch.from_pydict(
                {
                    "user_key": pa.array(np.arange(start, start + n), pa.int32()),
                    "seen": pa.array([s.tolist() for s in seen], pa.list_(pa.int32())),
                    "features": pa.array(
                        list(rng.normal(0, 0.3, (n, rank)).astype(np.float32)), pa.list_(pa.float32())
                    ),
                }
            )
        )
    return out


def track_batches(tracks: int, per: int) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(2)
    return [
        pa.RecordBatch.from_pydict(
            {
                "track_key": pa.array(np.arange(s, s + min(per, tracks - s)), pa.int32()),
                "features": pa.array(list(rng.random((min(per, tracks - s), FEATURES))), pa.list_(pa.float64())),
            }
        )
        for s in range(0, tracks, per)
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--tracks", type=int, default=200_000)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--history", type=int, default=100)
    p.add_argument("--new-tracks", type=int, default=50_000)
    p.add_argument("--played-tracks", type=int, default=200_000)
    args = p.parse_args()

    dgemm, sgemm = gemm_limit("float64"), gemm_limit("float32")
    print(f"# {dt.date.today()} {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(f"DGEMM {dgemm:.1f} GFLOP/s, SGEMM {sgemm:.1f} GFLOP/s (4096^3, every core)")

    rng = np.random.default_rng(0)
    catalog = topk.Catalog(np.arange(args.tracks), rng.normal(0, 0.3, (args.tracks, args.rank)).astype(np.float32))
    per = max(topk.BLOCK, args.users // (8 * (os.cpu_count() or 1)))
    batches = user_batches(args.users, args.tracks, args.rank, args.history, per)
    seconds, rows = parallel(topk.Ranker(args.k, catalog), batches)
    gflop = args.users * args.tracks * args.rank * 2 / 1e9
    print(
        f"top-{args.k}: {args.users:,} users x {args.tracks:,} tracks, rank {args.rank}, {args.history} played "
        f"each: {seconds:.1f} s, {rows:,} rows; {gflop:,.0f} GFLOP is {gflop / dgemm:.1f} s of DGEMM: "
        f"ratio {seconds / (gflop / dgemm):.2f} (SGEMM: {seconds / (gflop / sgemm):.2f})"
    )

    played = rng.random((args.played_tracks, FEATURES))
    neighbours = topk.Neighbours.of(np.arange(args.played_tracks), played, 5)
    seconds, rows = parallel(neighbours, track_batches(args.new_tracks, max(topk.BLOCK, args.new_tracks // 16)))
    print(
        f"content: 5 nearest of {args.new_tracks:,} new tracks among {args.played_tracks:,} played "
        f"({FEATURES} features): {seconds:.1f} s, {rows:,} rows (a cross join would be "
        f"{args.new_tracks * args.played_tracks:,} pairs)"
    )


if __name__ == "__main__":
    main()
