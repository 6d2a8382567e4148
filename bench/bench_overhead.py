"""What the platform costs on top of the work: the five jobs as the DAG runs them against one bare script.

Usage: .venv/bin/python bench/bench_overhead.py --events-per-day 1000000 --users 20000 --tracks 50000 [--tune 900]
       .venv/bin/python bench/bench_overhead.py --events-per-day 10000000 --users 100000 --tracks 200000 --jobs-only

On one generated day (seed 42), with one warm Spark Connect server (the DAG's default, started first and
warmed up on a 2,000-event day):

(a) the five jobs exactly as the DAG submits them: ``spark-submit --remote`` with the DAG's settings and the
    ``--py-files`` zip, one after the other, each with its data-quality suites, ops tables and evaluation;
(b) one bare client session doing the same reads, typed filtering, deduplication, integer keys, affinity,
    implicit ALS (rank 20, 10 iterations, alpha 10) and exact top-K (the same blocked kernel), all written to
    Delta, with no checks, no ops tables and no evaluation.

Prints each job's and each phase's wall time, the server's peak resident memory during each (``VmHWM``,
reset before each step), and (a) / (b). Writes throwaway lakes and each job's log (``<task>.log``, its last
run's) under ``bench/results/overhead/`` (ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.cli.generate import GenerateSpec, generate
from include.core.config import load_settings
from include.core.packaging import build_py_files
from include.lake.spark_conf import client_jvm_env
from include.models import topk
from include.orchestration import spark_server
from include.orchestration.airflow_env import airflow_env
from include.orchestration.dag_spec import JOBS, TUNING_JOB, SparkJob, submit_conf
from include.orchestration.spark_operator import remote_args

DAY = dt.date(2026, 11, 1)
OUT = ROOT / "bench" / "results" / "overhead"


class Memory:
    """Peak resident memory of one process, reset between steps (``/proc/<pid>/clear_refs``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def reset(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def timed(memory: Memory, step: Callable[[], object]) -> tuple[float, float]:
    memory.reset()
    started = time.monotonic()
    step()
    return time.monotonic() - started, memory.peak_mb()


def submit(
    lake: str, job_index: int | SparkJob, env: dict[str, str], url: str, day: dt.date = DAY, extra: tuple[str, ...] = ()
) -> None:
    """One job (of the nightly DAG, by index, or another) as the DAG's SparkJobOperator submits it to a Connect
    server, for ``day``, with ``extra`` arguments."""
    settings = load_settings(lake=lake)
    job = JOBS[job_index] if isinstance(job_index, int) else job_index
    args = ["--master", url, "--name", f"setlist-{job.task_id}", "--py-files", build_py_files()]
    for key, value in submit_conf(settings).items():
        args += ["--conf", f"{key}={value}"]
    cmd = [str(Path(sys.executable).parent / "spark-submit"), *remote_args(args), *job.entry]
    cmd += ["--run-date", day.isoformat(), "--lake", lake, "--run-id", "bench", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    (OUT / f"{job.task_id}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode:
        raise RuntimeError(f"{job.task_id} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def bare(spark, landing: Path, lake: Path, k: int = 10) -> dict[str, Callable[[], object]]:  # type: ignore[no-untyped-def]
    """The phases of the bare script, in order (each reads what the one before wrote)."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from include.core import schemas

    path = {name: str(lake / name) for name in ("bronze", "tracks", "silver", "affinity", "recs")}

    def layers() -> None:
        for source, schema, target in (
            ("interactions", schemas.RAW_INTERACTIONS, path["bronze"]),
            ("tracks", schemas.RAW_TRACKS, path["tracks"]),
        ):
            raw = spark.read.schema(schema).option("header", True).csv(str(landing / source / f"date={DAY}"))
            raw.write.format("delta").mode("overwrite").save(target)
        raw = spark.read.format("delta").load(path["bronze"])
        typed = raw.select(
            "event_id",
            "user_id",
            "track_id",
            F.col("played_at").try_cast("timestamp").alias("played_at"),
            F.col("ms_played").try_cast("long").alias("ms_played"),
            (F.lower("skipped") == "true").alias("skipped"),
        ).where("event_id IS NOT NULL AND user_id IS NOT NULL AND played_at IS NOT NULL AND ms_played >= 0")
        catalog = spark.read.format("delta").load(path["tracks"]).select("track_id").distinct()
        kept = typed.join(catalog, "track_id", "left_semi").dropDuplicates(["event_id"])
        users = kept.select("user_id").distinct().withColumn("user_key", F.row_number().over(Window.orderBy("user_id")))
        tracks = catalog.withColumn("track_key", F.row_number().over(Window.orderBy("track_id")))
        kept.join(users, "user_id").join(tracks, "track_id").write.format("delta").mode("overwrite").save(
            path["silver"]
        )
        silver = spark.read.format("delta").load(path["silver"])
        affinity = silver.groupBy("user_key", "track_key", "user_id", "track_id").agg(
            F.log1p(F.sum((~F.col("skipped")).cast("double"))).alias("strength")
        )
        affinity.write.format("delta").mode("overwrite").save(path["affinity"])

    model = {}

    def fit() -> None:
        affinity = spark.read.format("delta").load(path["affinity"])
        als = ALS(userCol="user_key", itemCol="track_key", ratingCol="strength", implicitPrefs=True, rank=20)
        model["m"] = als.setMaxIter(10).setRegParam(0.1).setAlpha(10.0).setSeed(42).fit(affinity)
        model["m"].userFactors.count()

    def top_k() -> None:
        affinity = spark.read.format("delta").load(path["affinity"])
        catalog = topk.Catalog(*topk.collect_matrix(model["m"].itemFactors))
        users = affinity.select("user_key")
        ranked = topk.rank(topk.user_rows(users, affinity, model["m"].userFactors), topk.Ranker(k, catalog))
        ids = affinity.select("user_key", "user_id").distinct()
        tracks = affinity.select("track_key", "track_id").distinct()
        out = ranked.join(ids, "user_key").join(tracks, "track_key")
        out.select("user_id", "track_id", "rank", "score").write.format("delta").mode("overwrite").save(path["recs"])

    return {"bronze, silver, gold": layers, "ALS fit": fit, "top-K": top_k}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events-per-day", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--tracks", type=int, default=50_000)
    p.add_argument("--jobs-only", action="store_true", help="run (a) only: the scale test at 10M events")
    p.add_argument(
        "--tune",
        type=int,
        default=0,
        metavar="SECONDS",
        help="then a tuning run with this budget on the day, and train_als again with the settings it found",
    )
    args = p.parse_args()

    shutil.rmtree(OUT, ignore_errors=True)
    lakes = {name: OUT / name for name in ("warmup", "dag", "bare")}
    started = time.monotonic()
    generate(GenerateSpec(str(lakes["warmup"]), DAY, 1, 200, 1000, 2000))
    generate(GenerateSpec(str(lakes["dag"]), DAY, 1, args.users, args.tracks, args.events_per_day))
    print(f"generated {args.events_per_day:,} events in {time.monotonic() - started:.0f}s", flush=True)
    settings = load_settings(lake=str(lakes["dag"]))
    started = time.monotonic()
    server = spark_server.start(settings, log_file=OUT / "spark-connect.log")
    print(f"warm Spark ready in {time.monotonic() - started:.1f}s (not counted below)", flush=True)
    memory = Memory(server.proc.pid)
    env = {**airflow_env(settings), **server.client_env()}
    env.update(client_jvm_env(settings.jars_dir, env))  # the client JVMs' options, as the DAG's operator sets them
    os.environ.update(server.client_env())
    rows: list[tuple[str, str, float, float]] = []
    try:
        for i in range(len(JOBS)):  # warm-up: what a long-lived server has done before any measured day
            submit(str(lakes["warmup"]), i, env, server.url)
        for i, job in enumerate(JOBS):
            seconds, peak = timed(memory, lambda i=i: submit(str(lakes["dag"]), i, env, server.url))
            rows.append(("a", job.task_id, seconds, peak))
            print(f"(a) {job.task_id}: {seconds:.1f}s, server peak {peak:.0f} MB", flush=True)
        if args.tune:
            rows += tune_and_refit(str(lakes["dag"]), args.tune, env, server.url, memory)
        if args.jobs_only:
            return print_rows(args, rows)
        from include.lake.spark import get_spark

        spark = get_spark("bench-bare", settings.with_overrides(spark_remote=server.url))
        for phase, step in bare(spark, lakes["dag"] / "landing", lakes["bare"]).items():
            seconds, peak = timed(memory, step)
            rows.append(("b", phase, seconds, peak))
            print(f"(b) {phase}: {seconds:.1f}s, server peak {peak:.0f} MB", flush=True)
        spark.stop()
    finally:
        spark_server.stop_process(server.proc)
    return print_rows(args, rows)


def tune_and_refit(
    lake: str, budget: int, env: dict[str, str], url: str, memory: Memory
) -> list[tuple[str, str, float, float]]:
    """The tuning run on the day, then ``train_als`` with the settings it found given as the DAG's params (so it
    evaluates them on the same split as the nightly run before it); prints both runs' primary metric."""
    from deltalake import DeltaTable

    from include.models.als import AlsParams

    seconds, peak = timed(memory, lambda: submit(lake, TUNING_JOB, env, url, extra=("--tuning-seconds", str(budget))))
    print(f"(a) tune_als ({budget}s budget): {seconds:.1f}s, server peak {peak:.0f} MB", flush=True)
    tuned = DeltaTable(f"{lake}/ops/tuned_settings").to_pandas().iloc[-1]
    print(f"tuned: {tuned['params']}: {tuned['trials']} trials, {tuned['pruned']} pruned, {tuned['note']}")
    params = AlsParams.from_json(tuned["params"])
    given = ("--rank", str(params.rank), "--max-iter", str(params.max_iter), "--reg-param", str(params.reg_param))
    given += ("--alpha", str(params.alpha))
    refit, refit_peak = timed(memory, lambda: submit(lake, 3, env, url, extra=given))
    print(f"(a) train_als with the tuned settings: {refit:.1f}s, server peak {refit_peak:.0f} MB", flush=True)
    runs = DeltaTable(f"{lake}/ops/model_runs").to_pandas().sort_values("evaluated_at")
    for _, run in runs.iterrows():
        print(f"{run['run_key']}: {run['params']} {run['primary_metric']}={run['primary_value']:.4f}")
    return [("a", "tune_als", seconds, peak), ("t", "train_als, tuned settings", refit, refit_peak)]


def print_rows(args: argparse.Namespace, rows: list[tuple[str, str, float, float]]) -> int:
    total = {side: sum(r[2] for r in rows if r[0] == side and r[1] != "tune_als") for side in ("a", "b")}
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"data: 1 day x {args.events_per_day:,} events, {args.users:,} users, {args.tracks:,} tracks; {dt.date.today()}"
    )
    print("| run | step | wall s | server peak RSS MB |\n|---|---|---|---|")
    for side, step, seconds, peak in rows:
        print(f"| {side} | {step} | {seconds:.1f} | {peak:,.0f} |")
    print(f"| a | **five jobs** | **{total['a']:.1f}** | |")
    if total["b"]:
        print(f"| b | **bare script** | **{total['b']:.1f}** | |\n\n(a) / (b) = {total['a'] / total['b']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
