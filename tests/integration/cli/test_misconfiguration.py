"""Misconfiguration a user can cause stops ``setlist run`` and ``setlist airflow`` fast with one line naming the
setting to change, instead of tasks that fail and retry for minutes: a metadata database that does not answer,
a lake that cannot be written, a Spark Connect server or master that does not answer, a port or an Airflow home
held by an earlier Airflow, and a Spark master that refuses the driver's authentication (all on loopback)."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.cli.generate import GenerateSpec, generate
from include.core.processes import free_port
from include.orchestration import airflow_server, spark_cluster

pytestmark = pytest.mark.integration
SETLIST = str(Path(sys.executable).parent / "setlist")


def setlist(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SETLIST, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The tests' environment without their warm Spark, with a configuration folder of its own; the Airflow home
    is the test run's unless ``extra`` names one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SETLIST_", "SPARK_CONNECT"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), **extra)
    return env


def _one_line(done: subprocess.CompletedProcess[str], code: int, starts: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and len(lines) == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert lines[0].startswith(starts), lines[0]
    assert "Traceback" not in done.stdout
    return lines[0]


def test_run_settings_that_cannot_work_stop_before_anything_starts(tmp_path):
    lake, closed = str(tmp_path / "lake"), free_port()
    home = tmp_path / "airflow"
    run = ("run", "--lake", lake, "--date", "2026-11-20")
    started = time.monotonic()

    url = f"postgresql+psycopg2://airflow:pw@127.0.0.1:{closed}/airflow"
    done = setlist(*run, env=_env(tmp_path, AIRFLOW_HOME=str(home), SETLIST_AIRFLOW_DB_URL=url))
    line = _one_line(done, 2, "setlist run: SETLIST_AIRFLOW_DB_URL: cannot reach Airflow's metadata database")
    assert f"postgresql+psycopg2://127.0.0.1:{closed}/airflow" in line and ":pw@" not in line

    (tmp_path / "a-file").write_text("")
    bad_lake = str(tmp_path / "a-file" / "lake")
    done = setlist("run", "--lake", bad_lake, "--date", "2026-11-20", env=_env(tmp_path, AIRFLOW_HOME=str(home)))
    _one_line(done, 2, f"setlist run: lake: cannot write to {tmp_path / 'a-file' / 'lake'} (Not a directory)")

    done = setlist(*run, env=_env(tmp_path, AIRFLOW_HOME=str(home), SETLIST_SPARK_REMOTE=f"sc://localhost:{closed}"))
    _one_line(done, 2, f"setlist run: SETLIST_SPARK_REMOTE: no Spark Connect server answers at sc://localhost:{closed}")

    master = f"spark://127.0.0.1:{closed}"
    done = setlist(*run, env=_env(tmp_path, AIRFLOW_HOME=str(home), SETLIST_SPARK_MASTER=master))
    _one_line(done, 2, f"setlist run: SETLIST_SPARK_MASTER: the Spark master spark://127.0.0.1:{closed} does not")
    assert time.monotonic() - started < 60  # four commands, each a few seconds
    assert not (home / "postgres").exists()  # nothing was started for them


def test_airflow_names_what_holds_its_port_or_its_home(tmp_path):
    home = tmp_path / "airflow"
    env = _env(tmp_path, AIRFLOW_HOME=str(home))
    with socket.socket() as held:  # an earlier Airflow's API server, say
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = setlist("airflow", "--lake", str(tmp_path / "lake"), "--port", str(port), env=env)
        _one_line(done, 2, f"setlist airflow: --port: 127.0.0.1:{port} is in use by pid {os.getpid()} (")

    home.mkdir()
    with open(home / airflow_server.HOME_LOCK, "w", encoding="utf-8") as lock:  # a running setlist airflow's lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("setlist airflow (pid 4321) on port 8080")
        lock.flush()
        done = setlist("airflow", "--lake", str(tmp_path / "lake"), "--port", str(free_port()), env=env)
    line = _one_line(done, 2, f"setlist airflow: AIRFLOW_HOME: {home} is in use by setlist airflow (pid 4321)")
    assert line.endswith("stop it first, or set AIRFLOW_HOME to another folder")


def test_a_master_that_refuses_the_drivers_secret_ends_the_run_in_one_line(tmp_path):
    """A cluster secured as Spark documents, and a driver with the wrong secret: the master refuses it, Spark's
    driver gives up after its registration attempts, and ``setlist run`` ends with the setting to change."""
    lake = tmp_path / "lake"
    generate(GenerateSpec(str(lake), dt.date(2026, 11, 20), 1, users=5, tracks=12, events_per_day=20, seed=1))
    cluster = spark_cluster.start(tmp_path / "cluster", workers=1, memory="512m", cluster_secret="the-right-one")
    try:
        env = _env(
            tmp_path,
            SETLIST_SPARK_MASTER=cluster.master_url,
            SETLIST_SPARK_CLUSTER_SECRET="a-wrong-one",
            SETLIST_DRIVER_MEMORY="1g",
        )
        started = time.monotonic()
        done = setlist("run", "--lake", str(lake), "--date", "2026-11-20", env=env, timeout=300)
        took = time.monotonic() - started
    finally:
        spark_cluster.stop(cluster)
    line = _one_line(done, 1, f"setlist: the Spark master {cluster.master_url} refused this driver's authentication")
    assert "set SETLIST_SPARK_CLUSTER_SECRET to the cluster's spark.authenticate.secret" in line
    assert "a-wrong-one" not in done.stdout + done.stderr
    assert took < 60, took  # at its first attempt to register, not after Spark's minute of attempts
