"""Times each Setlist job with spark-submit on a generated dataset, as the DAG runs them.

Usage: .venv/bin/python bench/bench_pipeline.py --events-per-day 100000 --days 1 [--users N --tracks N]
Writes a throwaway lake under bench/results/ (ignored) and prints one Markdown row per job:
wall seconds of the whole spark-submit (JVM start included) and input rows per second.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.cli.generate import GenerateSpec, generate
from include.core.config import load_settings
from include.core.packaging import build_py_files
from include.orchestration.airflow_env import airflow_env
from include.orchestration.dag_spec import JOBS, submit_conf


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events-per-day", type=int, default=100_000)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--users", type=int, default=5_000)
    p.add_argument("--tracks", type=int, default=20_000)
    args = p.parse_args()

    lake = ROOT / "bench" / "results" / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    start = dt.date(2026, 11, 1)
    t = time.monotonic()
    generate(
        GenerateSpec(
            lake=str(lake),
            start=start,
            days=args.days,
            users=args.users,
            tracks=args.tracks,
            events_per_day=args.events_per_day,
        )
    )
    gen_s = time.monotonic() - t
    settings = load_settings(lake=str(lake))
    conf = submit_conf(settings)
    py_files = build_py_files()
    env = airflow_env(settings)
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    rows = []
    for day in range(args.days):
        ds = (start + dt.timedelta(days=day)).isoformat()
        for job in JOBS:
            cmd = [
                spark_submit,
                "--master",
                settings.spark_master,
                "--driver-memory",
                settings.driver_memory,
                "--py-files",
                py_files,
            ]
            for k, v in conf.items():
                cmd += ["--conf", f"{k}={v}"]
            cmd += [*job.entry, "--run-date", ds, "--lake", settings.lake, "--run-id", "bench"]
            t = time.monotonic()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            seconds = time.monotonic() - t
            if out.returncode != 0:
                print(out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
                return out.returncode
            rows.append((ds, job.task_id, seconds))
    total_events = args.events_per_day * args.days
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"data: {args.days} day(s) x {args.events_per_day} events, {args.users} users, {args.tracks} tracks;"
        f" generated in {gen_s:.1f}s"
    )
    print("| day | job | wall s (spark-submit) | events/s |")
    print("|---|---|---|---|")
    for ds, job, seconds in rows:
        print(f"| {ds} | {job} | {seconds:.1f} | {args.events_per_day / seconds:,.0f} |")
    print(f"| all | pipeline | {sum(r[2] for r in rows):.1f} | {total_events / sum(r[2] for r in rows):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
