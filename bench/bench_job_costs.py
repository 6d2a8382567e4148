"""Where a small day's Spark task spends its time: the job's wall time, the warm server's CPU, the client's CPU,
and the client's round trips to the server, by kind.

Usage: .venv/bin/python bench/bench_job_costs.py [--events-per-day 10000 --users 300 --tracks 1500 --days 3]

Generates ``--days`` days (seed 42) in a throwaway lake under ``bench/results/job_costs/`` and starts one warm
Spark Connect server (the DAG's default). The five jobs run for the first day (the server's warm-up, not
shown), the three layer jobs for the days between, and the five jobs for the last day, measured: each job is a
process of its own, a Connect client as under ``spark-submit --remote`` (without the two launcher JVMs, which
``bench_client_jvm.py`` measures). Prints one row per job:

- wall: from the process's start to its end; server CPU: user + system seconds of the server's process group
  (its JVM and Python workers) meanwhile; client CPU: the job process's own;
- commands: Delta writes, MERGE and other SQL commands and local checkpoints (``execute_command``); fetches:
  queries whose rows come back (``collect``, ``count``, ``first``, GX's metrics); analyses: schema and plan
  requests; conf: session settings read or set. Each as ``count / seconds`` the client waited for them.

Stops the server it started.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "results" / "job_costs"
START = dt.date(2026, 11, 1)
LAYERS = 3  # the first three jobs (bronze, silver, gold) build the history the last day reads
# The Connect client's round trips, by what they are for: (kind, method of SparkConnectClient).
RPCS = (("commands", "execute_command"), ("fetches", "to_table"), ("analyses", "_analyze"), ("conf", "config"))
TICKS = os.sysconf("SC_CLK_TCK")


def child(job: str, argv: list[str]) -> None:
    """Run one job in this process with its client's round trips counted; print them as one JSON line."""
    from pyspark.sql.connect.client.core import SparkConnectClient

    spent: dict[str, list[float]] = {kind: [0, 0.0] for kind, _ in RPCS}

    def counted(kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return method(*args, **kwargs)
            finally:
                spent[kind][0] += 1
                spent[kind][1] += time.monotonic() - started

        return wrapper

    for kind, name in RPCS:
        setattr(SparkConnectClient, name, counted(kind, getattr(SparkConnectClient, name)))
    module = __import__(f"spark_jobs.{job}", fromlist=["main"])
    code = module.main(argv)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"code": code, "client_cpu": usage.ru_utime + usage.ru_stime, "rpcs": spent}))


def group_cpu(pgid: int) -> float:
    """CPU seconds of every live process in the group, with the children they have reaped."""
    total = 0
    for pid in subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


def run_job(job: str, day: dt.date, lake: str, env: dict[str, str], pgid: int) -> dict[str, Any]:
    """One job for one day in a child process (only the job's own imports count as its client's CPU)."""
    argv = ["--run-date", day.isoformat(), "--lake", lake, "--run-id", "bench"]
    before, started = group_cpu(pgid), time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, "--child", job, *argv], env=env, capture_output=True, text=True, cwd=ROOT
    )
    wall, server = time.monotonic() - started, group_cpu(pgid) - before
    if done.returncode:
        raise RuntimeError(f"{job} {day} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"]:
        raise RuntimeError(f"{job} {day} exited with {result['code']}:\n{done.stderr[-3000:]}")
    return {"job": job, "wall": wall, "server_cpu": server, **result}


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return 0
    from include.cli.generate import GenerateSpec, generate
    from include.core.config import load_settings
    from include.orchestration import spark_server
    from include.orchestration.dag_spec import JOBS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events-per-day", type=int, default=10_000)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--tracks", type=int, default=1500)
    p.add_argument("--days", type=int, default=3)
    args = p.parse_args()
    if args.days < 2:
        p.error("--days: at least 2 (the first warms the server up, the last is measured)")
    lake = OUT / "lake"
    shutil.rmtree(OUT, ignore_errors=True)
    generate(GenerateSpec(str(lake), START, args.days, args.users, args.tracks, args.events_per_day))
    settings = load_settings(lake=str(lake))
    server = spark_server.start(settings, log_file=OUT / "spark-connect.log")
    env = {**os.environ, **server.client_env(), "PYTHONPATH": str(ROOT), "SETLIST_SPARK_MODE": "connect"}
    days = [START + dt.timedelta(days=i) for i in range(args.days)]
    names = [job.task_id for job in JOBS]
    rows = []
    try:
        for day in days:
            for job in names if day in (days[0], days[-1]) else names[:LAYERS]:
                row = run_job(job, day, str(lake), env, server.proc.pid)
                if day == days[-1]:
                    rows.append(row)
                    print(f"{job}: {row['wall']:.1f}s", flush=True)
    finally:
        spark_server.stop_process(server.proc)
    print(
        f"\n{args.events_per_day:,} events/day, {args.users} users, {args.tracks} tracks; day {args.days} of "
        f"{args.days}; {platform.node()}, {os.cpu_count()} cores, {dt.date.today()}"
    )
    head = ["job", "wall s", "server CPU s", "client CPU s", *(kind for kind, _ in RPCS)]
    print(" | ".join(head))
    for r in rows:
        rpcs = [f"{r['rpcs'][kind][0]} / {r['rpcs'][kind][1]:.1f}" for kind, _ in RPCS]
        print(" | ".join([r["job"], f"{r['wall']:.1f}", f"{r['server_cpu']:.1f}", f"{r['client_cpu']:.1f}", *rpcs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
