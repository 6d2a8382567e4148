"""The warm Spark (Spark Connect server): loopback only, its token required, and never left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from include.core.config import PROJECT_ROOT, Settings
from tests import servers

pytestmark = pytest.mark.integration
CLIENT = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
print("rows", spark.range(3).count())
"""
SETLIST_CLIENT = """
import sys
from include.core.config import load_settings
from include.lake.spark import get_spark
spark = get_spark("check", load_settings(spark_mode="connect", spark_remote=sys.argv[1]))
print("rows", spark.range(3).count())
"""
STARTER = """
import json, sys, time
from pathlib import Path
from include.orchestration import spark_server
from include.core.config import load_settings
server = spark_server.start(load_settings(lake=sys.argv[1], driver_memory="1g"), log_file=Path(sys.argv[2]))
print(json.dumps({"pid": server.proc.pid, "port": server.port}), flush=True)
time.sleep(600)
"""


def _client(url: str, token: str | None, code: str = CLIENT) -> subprocess.CompletedProcess[str]:
    unset = ("SPARK_CONNECT_AUTHENTICATE_TOKEN", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    if token is not None:
        env["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-c", code, url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROJECT_ROOT,
    )


def test_listens_on_loopback_only_and_serves_only_clients_with_its_token(spark_server: dict[str, str]) -> None:
    url = spark_server["SETLIST_SPARK_REMOTE"]
    port = int(url.rsplit(":", 1)[1])
    addresses = servers.listen_addresses(port)
    assert addresses and all(a.startswith("127.") for a in addresses), addresses

    served = _client(url, spark_server["SPARK_CONNECT_AUTHENTICATE_TOKEN"])
    assert served.returncode == 0 and "rows 3" in served.stdout, served.stderr[-2000:]
    for token in ("wrong-token", None):
        refused = _client(url, token)
        assert refused.returncode != 0 and "rows" not in refused.stdout
        assert "UNAUTHENTICATED" in refused.stderr or "authentication" in refused.stderr.lower(), refused.stderr[-2000:]
    # Setlist's own client sends the token as a header of its own (spark.LoopbackChannel): the server refuses a
    # wrong one all the same
    assert _client(url, spark_server["SPARK_CONNECT_AUTHENTICATE_TOKEN"], SETLIST_CLIENT).returncode == 0
    refused = _client(url, "wrong-token", SETLIST_CLIENT)
    assert refused.returncode != 0 and "rows" not in refused.stdout and "UNAUTHENTICATED" in refused.stderr


def test_setlist_sessions_start_no_thread_per_call(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """gRPC's call credentials start a Python thread on every call to add the token; one such start once hung
    a job. Setlist's channel adds the header itself."""
    started: list[str] = []
    start = threading.Thread.start

    def counted(self: threading.Thread) -> None:
        started.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", counted)
    values = {spark.conf.get("spark.sql.shuffle.partitions") for _ in range(10)}  # ten calls
    assert len(values) == 1 and started == []


def _gone(pid: int) -> bool:
    """The process has ended: no entry, or a zombie with no thread left running (a JVM's main thread can
    end before its other threads, which then still hold the process's sockets)."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except FileNotFoundError:
        return True
    return status["State"].split()[0] == "Z" and int(status["Threads"]) <= 1


def test_the_server_stops_when_the_process_that_started_it_is_killed(settings: Settings, tmp_path: Path) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, settings.lake, str(tmp_path / "spark-connect.log")],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        started = json.loads(starter.stdout.readline())
        assert not _gone(started["pid"]) and servers.listen_addresses(started["port"])
        starter.send_signal(signal.SIGKILL)  # no Python cleanup runs: only the kernel can stop the server
        starter.wait(timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            _gone(started["pid"]) and not servers.listen_addresses(started["port"])
        ):
            time.sleep(0.5)
        assert _gone(started["pid"]), "the warm Spark outlived the process that started it"
        assert not servers.listen_addresses(started["port"])
    finally:
        if starter.poll() is None:
            starter.kill()


def test_setlist_run_ends_at_once_when_its_warm_spark_cannot_start(tmp_path: Path, airflow_home: Path) -> None:
    """Airflow starts while the warm Spark starts; a server that fails stops the run with its log's tail, and
    nothing started beside it (the job fork server, Airflow, the metadata database) stays behind."""
    env = {k: v for k, v in os.environ.items() if k not in ("SETLIST_SPARK_REMOTE", "SETLIST_JOB_FORKS")}
    env.update(AIRFLOW_HOME=str(airflow_home), SETLIST_DRIVER_MEMORY="1x", SETLIST_SPARK_MODE="connect")
    setlist = str(Path(sys.executable).parent / "setlist")
    done = subprocess.run(
        [setlist, "run", "--lake", str(tmp_path / "lake"), "--date", "2026-11-20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "the Spark Connect server did not start; last lines of" in done.stderr
    assert "Invalid maximum heap size: -Xmx1x" in done.stderr, done.stderr[-2000:]
    deadline = time.monotonic() + 60
    while (left := _processes_with(f"AIRFLOW_HOME={airflow_home}")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]


def _processes_with(variable: str) -> list[int]:
    """The processes whose environment holds ``variable`` (NAME=value): what this run started."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and variable.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # ended meanwhile, or not ours
            continue
    return found
