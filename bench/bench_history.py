"""Whether a night costs what its own day costs, whatever the lake's age: the same day on a young and an old lake.

Usage: .venv/bin/python bench/bench_history.py --events-per-day 1000000 --users 20000 --tracks 50000 --days 30

One generated day D (seed 42) runs ``ingest_bronze``, ``build_silver`` and ``build_gold`` exactly as the DAG submits
them (``spark-submit --remote`` to one warm Spark Connect server, warmed up first on a small day) on two lakes:

- young: nothing before D;
- old: ``--days`` days of history before D at the same size. The history is produced, not replayed: one generated
  day (seed 7) runs the three jobs, its bronze and silver partitions are copied to the other days (dates, play
  times and event ids shifted by whole days, so every copy is a distinct day of distinct events by the same
  users), and ``build_gold`` then builds the affinity state of all of them (a full recomputation, once).

Prints each job's wall time on both lakes, the ratio of the three layers (old / young), and what D added to
each lake on disk, by folder. Writes throwaway lakes under ``bench/results/history/`` (ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_overhead import Memory, submit, timed

from include.cli.generate import GenerateSpec, generate
from include.core import tables
from include.core.config import load_settings
from include.lake.spark_conf import client_jvm_env
from include.orchestration import spark_server
from include.orchestration.airflow_env import airflow_env
from include.orchestration.dag_spec import JOBS

OUT = ROOT / "bench" / "results" / "history"
DAY = dt.date(2026, 12, 1)
LAYERS = ("ingest_bronze", "build_silver", "build_gold")


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


def sizes(lake: Path) -> dict[str, float]:
    folders = ("bronze", "silver", "gold", "ops", "_data_docs")
    return {name: size_mb(lake / name) for name in folders} | {"all": size_mb(lake)}


def copy_history(spark, lake: Path, first: dt.date, days: int) -> None:  # type: ignore[no-untyped-def]
    """Copy the bronze and silver partitions of ``first`` to the ``days - 1`` days after it, shifted by whole days."""
    from pyspark.sql import functions as F

    from include.lake import delta_io

    bronze = delta_io.read_partition(spark, tables.BRONZE_INTERACTIONS, str(lake), first.isoformat())
    silver = delta_io.read_partition(spark, tables.SILVER_INTERACTIONS, str(lake), first.isoformat())
    for n in range(1, days):
        day = (first + dt.timedelta(days=n)).isoformat()
        shift = F.expr(f"INTERVAL {n} DAYS")
        copied = bronze.withColumn("event_id", F.concat(F.lit(f"h{n}_"), "event_id")).withColumn(
            "_run_date", F.lit(day)
        )
        copied = copied.withColumn(
            "played_at", F.date_format(F.to_timestamp("played_at") + shift, "yyyy-MM-dd'T'HH:mm:ss'Z'")
        )
        delta_io.overwrite_partition(copied, tables.BRONZE_INTERACTIONS, str(lake), day)
        moved = silver.withColumn("event_id", F.concat(F.lit(f"h{n}_"), "event_id")).withColumn("run_date", F.lit(day))
        delta_io.overwrite_partition(
            moved.withColumn("played_at", F.col("played_at") + shift), tables.SILVER_INTERACTIONS, str(lake), day
        )
        print(f"  history day {day} copied", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events-per-day", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--tracks", type=int, default=50_000)
    p.add_argument("--days", type=int, default=30, help="days of history in the old lake")
    args = p.parse_args()

    shutil.rmtree(OUT, ignore_errors=True)
    lakes = {name: OUT / name for name in ("warmup", "young", "old")}
    first = DAY - dt.timedelta(days=args.days)
    started = time.monotonic()
    generate(GenerateSpec(str(lakes["warmup"]), DAY, 1, 200, 1000, 2000))
    for name in ("young", "old"):
        generate(GenerateSpec(str(lakes[name]), DAY, 1, args.users, args.tracks, args.events_per_day, seed=42))
    generate(GenerateSpec(str(lakes["old"]), first, 1, args.users, args.tracks, args.events_per_day, seed=7))
    print(f"generated the day and the history's first day in {time.monotonic() - started:.0f}s", flush=True)

    settings = load_settings(lake=str(lakes["young"]))
    server = spark_server.start(settings, log_file=OUT / "spark-connect.log")
    memory = Memory(server.proc.pid)
    env = {**airflow_env(settings), **server.client_env()}
    env.update(client_jvm_env(settings.jars_dir, env))
    os.environ.update(server.client_env())
    jobs = [j for j in JOBS if j.task_id in LAYERS]
    rows: dict[str, dict[str, tuple[float, float]]] = {"young": {}, "old": {}}
    try:
        for job in jobs:
            submit(str(lakes["warmup"]), JOBS.index(job), env, server.url, DAY)
        started = time.monotonic()
        for job in jobs:
            submit(str(lakes["old"]), JOBS.index(job), env, server.url, first)
        from include.lake import delta_io
        from include.lake.spark import get_spark

        spark = get_spark("bench-history", settings.with_overrides(spark_remote=server.url))
        copy_history(spark, lakes["old"], first, args.days)
        shutil.rmtree(lakes["old"] / "gold" / "user_track_affinity")  # built again from every history day
        last = first + dt.timedelta(days=args.days - 1)
        submit(str(lakes["old"]), JOBS.index(jobs[-1]), env, server.url, last)
        pairs = delta_io.read(spark, tables.GOLD_AFFINITY, str(lakes["old"])).count()
        spark.stop()
        print(
            f"history of {args.days} days ({pairs:,} affinity pairs) in {time.monotonic() - started:.0f}s", flush=True
        )

        before = {name: sizes(lakes[name]) for name in ("young", "old")}
        for name in ("young", "old"):
            for job in jobs:
                seconds, peak = timed(
                    memory, lambda job=job, name=name: submit(str(lakes[name]), JOBS.index(job), env, server.url, DAY)
                )
                rows[name][job.task_id] = (seconds, peak)
                print(f"{name} {job.task_id}: {seconds:.1f}s, server peak {peak:.0f} MB", flush=True)
        after = {name: sizes(lakes[name]) for name in ("young", "old")}
    finally:
        spark_server.stop_process(server.proc)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; {dt.date.today()}")
    data = f"{args.events_per_day:,} events a day, {args.users:,} users, {args.tracks:,} tracks"
    print(f"data: {data}; old lake: {args.days} days before")
    print("| job | young lake s | old lake s | server peak MB (young / old) |\n|---|---|---|---|")
    for job in jobs:
        (y, yp), (o, op) = rows["young"][job.task_id], rows["old"][job.task_id]
        print(f"| {job.task_id} | {y:.1f} | {o:.1f} | {yp:,.0f} / {op:,.0f} |")
    young, old = (sum(rows[n][j.task_id][0] for j in jobs) for n in ("young", "old"))
    print(f"| **three layers** | **{young:.1f}** | **{old:.1f}** | |\n\nold / young = {old / young:.2f}")
    print("\n| lake | bronze MB | silver MB | gold MB | ops MB | data docs MB | whole lake MB |")
    print("|---|---|---|---|---|---|---|")
    for name in ("young", "old"):
        grew = {k: after[name][k] - before[name][k] for k in after[name]}
        print(f"| {name}: the day added | " + " | ".join(f"{grew[k]:.1f}" for k in grew) + " |")
        print(f"| {name}: in all | " + " | ".join(f"{after[name][k]:.1f}" for k in after[name]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
