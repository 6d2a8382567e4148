"""Whether a night costs what its own day costs, whatever the lake's age: the same day on a young and an old lake.

Usage: .venv/bin/python bench/bench_history.py --events-per-day 1000000 --users 20000 --tracks 50000 --days 30

One generated day D (seed 42) runs ``ingest_bronze``, ``build_silver`` and ``build_gold`` exactly as the DAG submits
them (``spark-submit --remote`` to one warm Spark Connect server, warmed up first on a small day) on three lakes:

- young: nothing before D;
- one day old (``second``): the day before D only (the old lake before its history was copied);
- old: ``--days`` days of history before D at the same size, from the same world (users, tastes, catalog). The
  history is produced, not replayed: the day before D is generated with D (one generation of two days) and runs
  the three jobs, its bronze and silver partitions are copied to the days before it (dates, play times and event
  ids shifted by whole days, and in each copy every user and every track replaced by another member of the same
  dimension, rotated by an offset of the copy's own), so every copy is a distinct day of distinct events and
  nearly distinct pairs: the affinity state holds ``--days`` days of pairs, as a lake whose users keep finding new
  tracks would, while the dimensions keep the young lake's size (a month adds events, not a catalog 30 times as
  large). Gold is then built again: ``build_gold`` of the day ``affinity_fold_days`` before D
  folds every history day up to it into the state, and ``build_gold`` of each later day runs as a night does. D
  on the old lake is then the costliest night that does not fold: the most days a reader merges on read.

The history is built on a server of its own; the measured runs get a new server, warmed up on a small day, and
run each job on each lake in turns (each lake first, second and last in turn), so no lake always goes first;
``--repeats`` times, each from a copy of the lakes as they were before D (medians reported). Then
D's ``build_gold`` runs once more on the old lake with one day fewer allowed pending: the night that folds.
Prints each job's wall time on each lake, the ratios of the three layers (old / young, old / one day old), the
folding night's time, and what D added to each lake on disk, by folder. Writes throwaway lakes under
``bench/results/history/`` (ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
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
MEASURED = ("young", "second", "old")  # nothing before D; one day before D; --days days before D


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


def sizes(lake: Path) -> dict[str, float]:
    folders = ("bronze", "silver", "gold", "ops", "_data_docs")
    return {name: size_mb(lake / name) for name in folders} | {"all": size_mb(lake)}


def positions(dim, key: str, ident: str):  # type: ignore[no-untyped-def]
    """A dimension's rows with their place in key order (``_pos``, from 0), cached, and how many there are."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    indexed = dim.select(key, ident, (F.row_number().over(Window.orderBy(key)) - 1).alias("_pos")).cache()
    return indexed, indexed.count()


def rotated(rows, indexed, size: int, key: str, ident: str, by: int):  # type: ignore[no-untyped-def]
    """``rows`` with each member of a dimension (``key``, ``ident``; ``indexed`` by :func:`positions`) replaced by
    the one ``by`` places further in key order (around the end): a bijection onto the same dimension."""
    from pyspark.sql import functions as F

    moved = rows.drop(ident).join(F.broadcast(indexed.select(key, "_pos")), key).drop(key)
    moved = moved.withColumn("_pos", (F.col("_pos") + by) % size)
    return moved.join(F.broadcast(indexed), "_pos").drop("_pos")


def copy_history(spark, lake: Path, template: dt.date, days: int) -> None:  # type: ignore[no-untyped-def]
    """Copy the bronze and silver partitions of ``template`` to the ``days - 1`` days before it, shifted by whole
    days (dates, play times and event ids). In each silver copy every user and every track is another one of the
    same dimensions (both rotated by an offset of the copy's own), so the copies are distinct pairs while the
    dimensions keep the young lake's size."""
    from pyspark.sql import functions as F

    from include.lake import delta_io

    bronze = delta_io.read_partition(spark, tables.BRONZE_INTERACTIONS, str(lake), template.isoformat())
    silver = delta_io.read_partition(spark, tables.SILVER_INTERACTIONS, str(lake), template.isoformat())
    users = positions(delta_io.read(spark, tables.SILVER_DIM_USER, str(lake)), "user_key", "user_id")
    tracks = positions(delta_io.read(spark, tables.SILVER_DIM_TRACK, str(lake)), "track_key", "track_id")
    for n in range(1, days):
        day = (template - dt.timedelta(days=n)).isoformat()
        shift = F.expr(f"INTERVAL {n} DAYS")
        copied = bronze.withColumn("event_id", F.concat(F.lit(f"h{n}_"), "event_id")).withColumn(
            "_run_date", F.lit(day)
        )
        played = F.date_format(F.to_timestamp("played_at") - shift, "yyyy-MM-dd'T'HH:mm:ss'Z'")
        delta_io.overwrite_partition(copied.withColumn("played_at", played), tables.BRONZE_INTERACTIONS, str(lake), day)
        moved = silver.withColumn("event_id", F.concat(F.lit(f"h{n}_"), "event_id")).withColumn("run_date", F.lit(day))
        moved = moved.withColumn("played_at", F.col("played_at") - shift)
        moved = rotated(moved, *users, "user_key", "user_id", n * 7919)
        moved = rotated(moved, *tracks, "track_key", "track_id", n * 104729)
        moved = moved.select(*silver.columns)
        delta_io.overwrite_partition(moved, tables.SILVER_INTERACTIONS, str(lake), day)
        print(f"  history day {day} copied", flush=True)


@contextlib.contextmanager
def warm_spark(settings, name: str) -> Iterator[tuple[dict[str, str], str, Memory]]:  # type: ignore[no-untyped-def]
    """A Connect server for the block: the jobs' environment, its URL and its memory meter."""
    server = spark_server.start(settings, log_file=OUT / f"spark-connect-{name}.log")
    env = {**airflow_env(settings), **server.client_env()}
    env.update(client_jvm_env(settings.jars_dir, env))
    os.environ.update(server.client_env())
    try:
        yield env, server.url, Memory(server.proc.pid)
    finally:
        spark_server.stop_process(server.proc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events-per-day", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--tracks", type=int, default=50_000)
    p.add_argument("--days", type=int, default=30, help="days of history in the old lake")
    p.add_argument("--repeats", type=int, default=3, help="measured runs of D on each lake (medians reported)")
    args = p.parse_args()

    shutil.rmtree(OUT, ignore_errors=True)
    lakes = {name: OUT / name for name in ("warmup", *MEASURED, "generated")}
    template = DAY - dt.timedelta(days=1)  # the history's newest day; the others are copies of it, further back
    started = time.monotonic()
    generate(GenerateSpec(str(lakes["warmup"]), DAY, 1, 200, 1000, 2000))
    # One world (users, tastes, catalog) over two days: the history's template day, then the measured day.
    generate(GenerateSpec(str(lakes["generated"]), template, 2, args.users, args.tracks, args.events_per_day, seed=42))
    for name, days in (("young", (DAY,)), ("old", (template, DAY))):
        for day in days:
            for source in tables.LANDING_SOURCES:
                folder = Path(tables.landing_dir(str(lakes["generated"]), source, day))
                shutil.copytree(folder, Path(tables.landing_dir(str(lakes[name]), source, day)))
    print(f"generated the template day and the measured day in {time.monotonic() - started:.0f}s", flush=True)

    settings = load_settings(lake=str(lakes["young"]))
    jobs = [j for j in JOBS if j.task_id in LAYERS]
    started = time.monotonic()
    with warm_spark(settings, "history") as (env, url, _):
        for job in jobs:
            submit(str(lakes["old"]), JOBS.index(job), env, url, template)
        shutil.copytree(lakes["old"], lakes["second"])  # a lake whose history is the one day before D
        from include.lake import delta_io
        from include.lake.spark import get_spark

        spark = get_spark("bench-history", settings.with_overrides(spark_remote=url))
        copy_history(spark, lakes["old"], template, args.days)
        shutil.rmtree(lakes["old"] / "gold")  # built again from every history day
        fold_days = settings.affinity_fold_days
        for n in range(fold_days, 0, -1):  # the first folds every day up to it; the others run as nights do
            submit(str(lakes["old"]), JOBS.index(jobs[-1]), env, url, DAY - dt.timedelta(days=n))
        pairs = delta_io.read(spark, tables.GOLD_AFFINITY, str(lakes["old"])).count()
        spark.stop()
    print(
        f"history of {args.days} days in {time.monotonic() - started:.0f}s: {pairs:,} affinity pairs folded as of"
        f" {DAY - dt.timedelta(days=fold_days)}, {fold_days - 1} days after it pending",
        flush=True,
    )

    # A new server for the measured runs, warmed up. Each repeat starts from a copy of the lakes as they were
    # before D and runs each job on each lake, in turns; the table gives the medians.
    bases = {name: OUT / f"{name}-before" for name in MEASURED}
    for name, base in bases.items():
        shutil.copytree(lakes[name], base)
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {name: {} for name in MEASURED}
    before = {name: sizes(lakes[name]) for name in MEASURED}
    with warm_spark(settings, "measured") as (env, url, memory):
        for job in jobs:
            submit(str(lakes["warmup"]), JOBS.index(job), env, url, DAY)
        for repeat in range(args.repeats):
            if repeat:
                for name, base in bases.items():
                    shutil.rmtree(lakes[name])
                    shutil.copytree(base, lakes[name])
            for i, job in enumerate(jobs):
                turn = (i + repeat) % len(MEASURED)  # each lake goes first, second and last in turn
                for name in MEASURED[turn:] + MEASURED[:turn]:
                    step = lambda job=job, name=name: submit(str(lakes[name]), JOBS.index(job), env, url, DAY)  # noqa: E731
                    runs[name].setdefault(job.task_id, []).append(timed(memory, step))
                    print(f"{name} {job.task_id}: {runs[name][job.task_id][-1][0]:.1f}s", flush=True)
        after = {name: sizes(lakes[name]) for name in MEASURED}
        # The night that folds: D's build_gold again on the old lake, one pending day over the setting.
        fold_env = {**env, "SETLIST_AFFINITY_FOLD_DAYS": str(fold_days - 1)}
        fold = lambda: submit(str(lakes["old"]), JOBS.index(jobs[-1]), fold_env, url, DAY)  # noqa: E731
        fold_seconds, fold_peak = timed(memory, fold)
        print(f"old build_gold folding {fold_days} days: {fold_seconds:.1f}s", flush=True)
    rows = {
        name: {job: (statistics.median(s for s, _ in r), max(p for _, p in r)) for job, r in per.items()}
        for name, per in runs.items()
    }

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; {dt.date.today()}")
    data = f"{args.events_per_day:,} events a day, {args.users:,} users, {args.tracks:,} tracks"
    print(f"data: {data}; old lake: {args.days} days before; medians of {args.repeats} runs of D on each lake")
    for name in MEASURED:
        each = (f"{job} " + ", ".join(f"{s:.1f}" for s, _ in r) for job, r in runs[name].items())
        print(f"{name} runs, s: " + "; ".join(each))
    print("| job | young lake s | lake one day old s | old lake s | server peak MB (young / one day / old) |")
    print("|---|---|---|---|---|")
    for job in jobs:
        medians = " | ".join(f"{rows[name][job.task_id][0]:.1f}" for name in MEASURED)
        peaks = " / ".join(f"{rows[name][job.task_id][1]:,.0f}" for name in MEASURED)
        print(f"| {job.task_id} | {medians} | {peaks} |")
    total = {name: sum(rows[name][j.task_id][0] for j in jobs) for name in MEASURED}
    print("| **three layers** | " + " | ".join(f"**{total[name]:.1f}**" for name in MEASURED) + " | |\n")
    old, young, second = total["old"], total["young"], total["second"]
    print(f"old / young = {old / young:.2f}; old / one day old = {old / second:.2f}")
    print(f"the night that folds {fold_days} days (build_gold, old lake): {fold_seconds:.1f}s, {fold_peak:,.0f} MB")
    print("\n| lake | bronze MB | silver MB | gold MB | ops MB | data docs MB | whole lake MB |")
    print("|---|---|---|---|---|---|---|")
    for name in MEASURED:
        grew = {k: after[name][k] - before[name][k] for k in after[name]}
        print(f"| {name}: the day added | " + " | ".join(f"{grew[k]:.1f}" for k in grew) + " |")
        print(f"| {name}: in all | " + " | ".join(f"{after[name][k]:.1f}" for k in after[name]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
