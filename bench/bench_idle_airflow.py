"""What an idle ``setlist airflow`` costs: CPU-seconds per minute of its whole process tree, nothing running.

Usage: .venv/bin/python bench/bench_idle_airflow.py [--settle 60 --seconds 120] [--env NAME=VALUE ...]
Starts ``setlist airflow`` on an empty lake in an Airflow home of its own (``bench/results/idle-airflow``, ignored),
waits ``--settle`` seconds after its health endpoint answers (the first DAG parse and the database's start are
done by then), then sums the CPU time its processes (everything whose environment names that home: API server,
scheduler, DAG processor, the embedded PostgreSQL's keeper, the warm Spark, the job fork server) spend in
``--seconds``, and stops it with Ctrl-C as a user does. ``--env`` tries an Airflow setting (for example
``AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=120``).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.core.processes import free_port

log = logging.getLogger("bench_idle_airflow")


def tree(home: str) -> list[psutil.Process]:
    """The processes whose environment names this Airflow home."""
    found = []
    for proc in psutil.process_iter(["environ"]):
        if (proc.info["environ"] or {}).get("AIRFLOW_HOME") == home:
            found.append(proc)
    return found


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, tuple[float, str]]:
    out = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            out[proc.pid] = (times.user + times.system, " ".join(proc.cmdline())[:80])
        except psutil.Error:
            continue
    return out


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()

    root = ROOT / "bench" / "results" / "idle-airflow"
    shutil.rmtree(root, ignore_errors=True)
    home = root / "home"
    home.mkdir(parents=True)
    home.chmod(0o711)  # as root the embedded PostgreSQL runs as the postgres user, who must enter it
    env = {**os.environ, "AIRFLOW_HOME": str(home), "XDG_CONFIG_HOME": str(root / "config")}
    env.setdefault("SETLIST_AIRFLOW_PASSWORD", "bench-idle-airflow")
    tried = dict(item.split("=", 1) for item in args.env)
    env.update(tried)
    port = free_port()
    setlist = str(Path(sys.executable).parent / "setlist")
    command = [setlist, "airflow", "--lake", str(root / "lake"), "--port", str(port)]
    with open(root / "setlist-airflow.out", "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"setlist airflow did not start: {root / 'setlist-airflow.out'}") from None
                time.sleep(2)
        time.sleep(args.settle)
        procs = tree(str(home))
        before = cpu_seconds(procs)
        time.sleep(args.seconds)
        after = cpu_seconds(procs)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=180)
    spent = sorted(((t - before.get(pid, (t, ""))[0], name) for pid, (t, name) in after.items()), reverse=True)
    total = sum(s for s, _ in spent)
    settings = ", ".join(args.env) or "as it starts"
    log.info("idle setlist airflow (%s), %d processes, %.0f s on %s, %d cores:", settings, len(procs),
             args.seconds, platform.node(), os.cpu_count())  # fmt: skip
    for seconds, name in spent[:6]:
        log.info("  %6.2f CPU-s  %s", seconds, name)
    log.info("total %.1f CPU-s, %.1f CPU-s a minute", total, total * 60 / args.seconds)


if __name__ == "__main__":
    main()
