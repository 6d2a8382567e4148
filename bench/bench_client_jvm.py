"""What a Connect client's ``spark-submit`` costs before the job's Python starts: its two JVMs (the launcher,
then SparkSubmit, which only starts the Python and waits for it), with the JVMs' defaults and with Setlist's
client options (C1 only, the class-data-sharing archives of ``make jars``).

Usage: .venv/bin/python bench/bench_client_jvm.py [--repeats 5]

Submits a job that only prints (``--remote`` to a port nobody listens on: the job never connects) in the
environment the DAG's tasks get, and prints the median wall time and CPU time (user + system, all processes)
of each variant. Writes a temporary job file only.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.core.config import load_settings
from include.lake.spark_conf import client_jvm_env
from include.orchestration.airflow_env import airflow_env


def submit(env: dict[str, str], job: Path) -> tuple[float, float]:
    """One submit: its wall seconds and the CPU seconds of the processes it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--remote", "sc://localhost:1", str(job)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode or "job ran" not in done.stdout:
        raise SystemExit(f"spark-submit failed: {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    settings = load_settings()
    base = airflow_env(settings)
    for var in ("SPARK_LAUNCHER_OPTS", "SPARK_SUBMIT_OPTS"):
        base.pop(var, None)
    variants = {"JVM defaults": base, "Setlist client options": {**base, **client_jvm_env(settings.jars_dir, base)}}
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.py"
        job.write_text("print('job ran')\n")
        print(f"{os.cpu_count()} cores; {args.repeats} submits each, medians")
        for name, env in variants.items():
            submit(env, job)  # the page cache warm for both
            runs = [submit(env, job) for _ in range(args.repeats)]
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"{name:24s} wall {wall:5.2f} s   CPU {cpu:5.2f} s")


if __name__ == "__main__":
    main()
