"""Validation time as a share of each layer's job time, with spark-submit as the DAG runs the jobs.

Usage: .venv/bin/python bench/bench_validation.py --events-per-day 1000000 [--users N --tracks N]
Generates one day into a throwaway lake under bench/results/ (ignored), runs ingest_bronze, build_silver,
build_gold, train_als and recommend, and prints one Markdown row per job: the job's wall time (spark-submit,
JVM start included), the time spent in GX validations (each suite validates a frame that is already
computed and cached, so this is the validation alone) and their share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.cli.generate import GenerateSpec, generate
from include.core.config import load_settings
from include.core.packaging import build_py_files
from include.orchestration.airflow_env import airflow_env
from include.orchestration.dag_spec import JOBS, submit_conf

VALIDATE = re.compile(r"\[setlist\] validate (\S+): (\d+) checks in ([0-9.]+)s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events-per-day", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--tracks", type=int, default=50_000)
    p.add_argument("--jobs", nargs="+", default=[j.task_id for j in JOBS], help="the first jobs to run, in DAG order")
    args = p.parse_args()

    lake = ROOT / "bench" / "results" / "validation-lake"
    shutil.rmtree(lake, ignore_errors=True)
    day = dt.date(2026, 11, 1)
    spec = GenerateSpec(
        lake=str(lake), start=day, days=1, users=args.users, tracks=args.tracks, events_per_day=args.events_per_day
    )
    generate(spec)
    settings = load_settings(lake=str(lake))
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    base = [spark_submit, "--master", settings.spark_master, "--driver-memory", "4g", "--py-files", build_py_files()]
    for k, v in submit_conf(settings).items():
        base += ["--conf", f"{k}={v}"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"data: 1 day x {args.events_per_day} events, {args.users} users, {args.tracks} tracks")
    print("| job | wall s | validation s | share | suites (checks, s) |")
    print("|---|---|---|---|---|")
    for job in [j for j in JOBS if j.task_id in args.jobs]:
        cmd = [*base, *job.entry, "--run-date", day.isoformat(), "--lake", settings.lake, "--run-id", "bench"]
        started = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, env=airflow_env(settings))
        wall = time.monotonic() - started
        if out.returncode != 0:
            print(out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
            return out.returncode
        suites = VALIDATE.findall(out.stdout)
        spent = sum(float(s) for _, _, s in suites)
        detail = ", ".join(f"{name} ({n}, {s})" for name, n, s in suites) or "-"
        print(f"| {job.task_id} | {wall:.1f} | {spent:.1f} | {100 * spent / wall:.0f}% | {detail} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
