"""How long each Spark task of the nightly DAG takes under the real Airflow scheduler.

Usage: .venv/bin/python bench/bench_dag.py --events-per-day 10000 --days 3 [--users 300 --tracks 1500]

Starts ``setlist airflow``'s components (API server, scheduler with the LocalExecutor, DAG processor) and the
warm Spark they submit to, on loopback, over a throwaway lake under ``bench/results/dag/`` with generated
days; triggers one run per day through the REST API (``train=always``, so every day trains and recommends),
one after the other, and reads each task instance's duration from the REST API (what the UI shows: from the
task's start to its end, as the worker runs it). Prints every task's seconds per day and the median of the
five Spark tasks per day and over all days. Stops everything it started.
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.cli.generate import GenerateSpec, generate
from include.core import processes
from include.core.config import load_settings
from include.orchestration import airflow_server, metadata_db
from include.orchestration.dag_spec import DAG_ID, JOBS

OUT = ROOT / "bench" / "results" / "dag"
START = dt.date(2026, 11, 1)


def wait_until_up(api: airflow_server.RestClient, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            api.call("GET", f"/api/v2/dags/{DAG_ID}")
            return
        except OSError:
            time.sleep(2)
    raise RuntimeError("Airflow did not come up (or the DAG was not parsed) in time")


def run_day(api: airflow_server.RestClient, day: dt.date) -> tuple[dict[str, float], float]:
    """Each task's seconds, and the run's own (from its start to its end, scheduling between tasks included)."""
    run_id = f"bench_{day.isoformat()}"
    conf = {"run_date": day.isoformat(), "train": "always"}
    logical = f"{day.isoformat()}T02:00:00Z"
    api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": logical, "conf": conf})
    while True:
        run = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        if (state := run["state"]) in ("success", "failed"):
            break
        time.sleep(2)
    if state != "success":
        raise RuntimeError(f"the run for {day} failed")
    tis = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    took = (dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])).total_seconds()
    return {t["task_id"]: float(t["duration"] or 0.0) for t in tis}, took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events-per-day", type=int, default=10_000)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--tracks", type=int, default=1500)
    args = p.parse_args()

    shutil.rmtree(OUT, ignore_errors=True)
    lake = OUT / "lake"
    generate(GenerateSpec(str(lake), START, args.days, args.users, args.tracks, args.events_per_day))
    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    password = "bench-airflow-password"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "SETLIST_AIRFLOW_PASSWORD": password,
            "XDG_CONFIG_HOME": str(home / "config"),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    home.chmod(0o711)  # as root the embedded metadata database runs as the postgres user, who must enter it
    port = processes.free_port()
    started = time.monotonic()
    settings = load_settings(lake=str(lake))
    database = contextlib.ExitStack()
    db_env = database.enter_context(metadata_db.environment(settings, home))  # the default: embedded PostgreSQL
    procs = airflow_server.start(settings, port, db_env)
    durations: list[dict[str, float]] = []
    runs: list[float] = []
    try:
        api = airflow_server.RestClient(f"http://127.0.0.1:{port}", password)
        wait_until_up(api)
        api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        print(f"Airflow and the warm Spark up in {time.monotonic() - started:.0f}s", flush=True)
        for i in range(args.days):
            tasks, took = run_day(api, START + dt.timedelta(days=i))
            durations.append(tasks)
            runs.append(took)
            print(f"day {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in durations[-1].items()), flush=True)
    finally:
        airflow_server.stop(procs)
        database.close()
        shutil.rmtree(home, ignore_errors=True)
    spark_tasks = [j.task_id for j in JOBS]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; {dt.date.today()}")
    print(f"data: {args.days} day(s) x {args.events_per_day:,} events, {args.users} users, {args.tracks} tracks")
    print("| task | " + " | ".join(f"day {i + 1} s" for i in range(args.days)) + " |")
    print("|---|" + "---|" * args.days)
    for task in durations[0]:
        print(f"| {task} | " + " | ".join(f"{d.get(task, 0):.1f}" for d in durations) + " |")
    medians = [statistics.median(d[t] for t in spark_tasks) for d in durations]
    print("| **median of the Spark tasks** | " + " | ".join(f"**{m:.1f}**" for m in medians) + " |")
    print("| whole run, start to end | " + " | ".join(f"{r:.1f}" for r in runs) + " |")
    print("| of which Spark tasks | " + " | ".join(f"{sum(d[t] for t in spark_tasks):.1f}" for d in durations) + " |")
    every = [d[t] for d in durations for t in spark_tasks]
    print(f"\nmedian Spark task over all days: {statistics.median(every):.1f}s (max {max(every):.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
