"""Jobs started as programs run in children of the warm job fork server: same exit status, same streams, and a
killed or cancelled caller takes its job with it."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.cli.generate import GenerateSpec, generate
from include.core.config import PROJECT_ROOT
from include.lake import job_forks, jobs
from tests import forks

pytestmark = pytest.mark.integration
DAY = "2026-11-20"


def _server_pid(path: str) -> int:
    found = subprocess.run(["pgrep", "-f", f"job_forks --socket {path}"], capture_output=True, text=True)
    [pid] = [int(p) for p in found.stdout.split()]
    return pid


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _title(pid: int) -> str:
    """The process's command line as ps shows it ("" once it has ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start(argv: list[str]) -> subprocess.Popen[str]:
    """A job as the DAG's spark-submit starts its Python: a program, with the run's client environment."""
    return subprocess.Popen(
        [sys.executable, *argv], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# What the DAG submits (the entry point, which hands off before the job's imports), and the job's own file.
ENTRIES = (["spark_jobs/__main__.py", "build_gold"], ["spark_jobs/build_gold.py"])


@pytest.mark.parametrize("entry", ENTRIES, ids=["entry point", "job file"])
def test_a_forked_job_keeps_its_exit_status_and_its_one_line_error(spark_server, tmp_path, entry) -> None:
    server = _server_pid(forks.socket_path())
    job = _start([*entry, "--run-date", "2026-13-01", "--lake", str(tmp_path)])
    out, err = job.communicate(timeout=60)
    assert job.returncode == jobs.EXIT_USAGE
    assert err.strip() == "[setlist] build_gold: --run-date: expected a date as YYYY-MM-DD, got '2026-13-01'"
    assert _children(server) == []  # the child is reaped


def test_a_killed_or_cancelled_caller_takes_its_forked_job_with_it(spark_server, tmp_path) -> None:
    generate(
        GenerateSpec(
            lake=str(tmp_path), start=dt.date.fromisoformat(DAY), days=1, users=20, tracks=50, events_per_day=200
        )
    )
    server = _server_pid(forks.socket_path())
    argv = ["spark_jobs/__main__.py", "ingest_bronze", "--run-date", DAY, "--lake", str(tmp_path)]
    for sig in (signal.SIGKILL, signal.SIGTERM):
        job = _start(argv)
        deadline = time.monotonic() + 30
        while not (children := _children(server)):  # handed off: a child of the fork server runs it
            assert job.poll() is None and time.monotonic() < deadline, job.communicate()
            time.sleep(0.02)
        [child] = children
        while not (title := _title(child)).startswith("setlist-job "):  # set by the child as it starts
            assert title and time.monotonic() < deadline, (title, job.poll(), job.communicate())
            time.sleep(0.02)
        assert title.startswith(f"setlist-job spark_jobs.ingest_bronze --run-date {DAY}"), title
        job.send_signal(sig)
        job.communicate(timeout=30)
        assert job.returncode == -sig
        assert _gone(child), f"the forked job {child} outlived its caller ({sig!r})"
    done = _start(argv)  # the day still lands whole afterwards
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err[-3000:]
    assert re.search(r"interactions: \d+ rows from 1 files -> bronze\.interactions", out), out


def test_the_fork_server_refuses_what_it_did_not_preload(spark_server) -> None:
    conn = job_forks.connect(forks.socket_path())
    assert conn is not None
    with (
        open(os.devnull, "rb") as null,
        pytest.raises(job_forks.Refused, match="module must be one of .*spark_jobs.recommend"),
    ):
        job_forks.run(conn, "os", [], {}, "/", (null.fileno(),) * 3)


@pytest.mark.parametrize("entry", ENTRIES, ids=["entry point", "job file"])
def test_without_an_answering_fork_server_the_job_runs_in_its_own_process(tmp_path, entry) -> None:
    env = {**os.environ, job_forks.SOCKET_VAR: str(tmp_path / "none.sock")}
    done = subprocess.run(
        [sys.executable, *entry, "--run-date", "2026-13-01", "--lake", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == jobs.EXIT_USAGE
    assert done.stderr.strip().endswith("--run-date: expected a date as YYYY-MM-DD, got '2026-13-01'")
