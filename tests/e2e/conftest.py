"""The e2e lake: two generated days (one with bad lines), the first run through Airflow once per test
session on a Spark standalone cluster, then shared by the tests of the pipeline's output and of the explorer.
Airflow's metadata is in a real PostgreSQL: a configured one (``SETLIST_AIRFLOW_DB_URL``) for the first day's
``setlist run``, the embedded default for ``setlist airflow``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from include.cli.generate import GenerateSpec, generate
from include.orchestration import spark_cluster
from tests import servers

DAYS = ("2026-11-01",)  # through `setlist run`; the backfill test then runs both days
BACKFILL_DAYS = (*DAYS, "2026-11-02")
K = 10
BAD_LINE = "ev_bad_1,user_000001,trk_0000001,not-a-time,100,false,false,\n"
SHORT_LINE = "ev_bad_2,user_000001\n"
CLUSTER_SECRET = "e2e-spark-cluster-secret"


SETLIST = str(Path(sys.executable).parent / "setlist")


def setlist(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SETLIST, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=1500)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL server for the e2e tier (Airflow's metadata database); stopped at the end."""
    with servers.postgres() as url:
        yield url


@dataclass(frozen=True)
class FirstDay:
    """The e2e lake after its first day, and what the Spark cluster showed while the day ran on it."""

    lake: str
    listen_addresses: dict[int, list[str]]  # each of the cluster's ports while it ran
    worker_cores: list[int]
    apps: list[dict]  # the master's completed applications
    apps_per_worker: list[set[str]]  # the application ids each worker ran executors for
    executor_commands: list[str]  # each executor's command line, as its worker logged it


@pytest.fixture(scope="session")
def first_day(tmp_path_factory: pytest.TempPathFactory, spark_server: dict[str, str], postgres_url: str) -> FirstDay:
    """Two days land (the first with two bad lines). The first runs through ``setlist run`` with Airflow's
    metadata in PostgreSQL (where the scheduler of the ``airflow`` fixture finds that run later) and its warm
    Spark as the driver of a Spark standalone cluster: a master and two 1-core workers started by
    ``setlist spark-cluster``'s code on loopback with a shared secret, stopped once the day is done. The
    backfill test later runs both days on the test run's local warm Spark, and the UI test this first
    day again there."""
    root = tmp_path_factory.mktemp("e2e-lake")
    generate(
        GenerateSpec(
            lake=str(root), start=dt.date(2026, 11, 1), days=2, users=60, tracks=200, events_per_day=1500, seed=3
        ),
    )
    day1 = root / "landing" / "interactions" / f"date={DAYS[0]}" / "part-00000.csv"
    with open(day1, "a", encoding="utf-8") as fh:
        fh.write(BAD_LINE + SHORT_LINE)
    marker = day1.with_name("_SUCCESS")  # the day's manifest counts the two lines too
    manifest = json.loads(marker.read_text(encoding="utf-8"))
    manifest["files"][day1.name] += 2
    marker.write_text(json.dumps(manifest), encoding="utf-8")

    cluster_root = tmp_path_factory.mktemp("spark-cluster")
    cluster = spark_cluster.start(cluster_root, workers=2, cores=1, memory="1536m", cluster_secret=CLUSTER_SECRET)
    try:
        on_cluster = {
            **os.environ,
            "SETLIST_AIRFLOW_DB_URL": postgres_url,
            "SETLIST_SPARK_MASTER": cluster.master_url,
            "SETLIST_SPARK_REMOTE": "",  # not the test run's local warm Spark: `setlist run` starts one on the cluster
            "SETLIST_SPARK_CLUSTER_SECRET": CLUSTER_SECRET,
            "SETLIST_DRIVER_MEMORY": "2g",
            "SETLIST_SHUFFLE_PARTITIONS": "2",
            "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("cluster-config")),
        }
        on_cluster.pop("SPARK_CONNECT_AUTHENTICATE_TOKEN", None)
        result = setlist("run", "--lake", str(root), "--date", *DAYS, env=on_cluster)
        ports = (cluster.master_port, cluster.master_ui_port, *cluster.worker_ui_ports)
        listen = {port: servers.listen_addresses(port) for port in ports}
        worker_cores = [w["cores"] for w in cluster.status()["workers"]]
        apps = list(cluster.status()["completedapps"])
        apps_per_worker = []
        for port in cluster.worker_ui_ports:
            worker = cluster.status(port)
            apps_per_worker.append({e["appid"] for e in worker["finishedexecutors"] + worker["executors"]})
    finally:
        spark_cluster.stop(cluster)
    assert all(p.poll() is not None for p in cluster.procs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"newest_day {DAYS[0]}: train (train=auto: no newer run)" in result.stdout
    # progress comes from the events of the run itself, its Airflow tasks and its spark-submitted jobs
    assert f"\n[setlist] run setlist_nightly for {DAYS[0]}T" in result.stdout
    assert f"\n    [setlist] resolve_run_date: {DAYS[0]}\n" in result.stdout
    for step in ("ingest_bronze", "build_silver", "build_gold", "train_als", "recommend"):
        assert result.stdout.count(f"[setlist] {step}: done") == 1

    commands = [
        line
        for stderr in sorted(cluster_root.glob("worker-*/app-*/*/stderr"))
        for line in stderr.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith("Spark Executor Command:")
    ]
    return FirstDay(str(root), listen, worker_cores, apps, apps_per_worker, commands)


@pytest.fixture(scope="session")
def lake(first_day: FirstDay) -> str:
    return first_day.lake


@dataclass
class Airflow:
    """``setlist airflow`` as a user runs it (``make airflow``): the real command, in a process group of its own,
    on the default set-up (the embedded PostgreSQL metadata database) in an Airflow home of its own, over the
    e2e lake; its tasks submit to the test run's warm Spark. Clock-driven runs are off
    (``use_job_schedule``): only the tests' backfills and triggers run. ``marker`` is in the environment of
    every process it starts."""

    lake: str
    home: Path
    port: int
    env: dict[str, str]
    password: str
    marker: str
    proc: subprocess.Popen[bytes] | None = None
    api: Any = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from include.orchestration import airflow_server

        self.starts += 1
        with open(self.home / f"setlist-airflow-{self.starts}.out", "wb") as out:
            command = [SETLIST, "airflow", "--lake", self.lake, "--port", str(self.port)]
            self.proc = subprocess.Popen(command, env=self.env, stdout=out, stderr=out, start_new_session=True)
        servers.wait_for_http(self.url + "/api/v2/monitor/health", self.proc, timeout_s=240)
        self.api = airflow_server.RestClient(self.url, self.password)  # a new start signs with a new secret
        deadline = time.monotonic() + 180
        while not self.api.call("GET", "/api/v2/dags?dag_id_pattern=setlist_nightly")["dags"]:  # a new database
            assert time.monotonic() < deadline, "the DAG processor did not register setlist_nightly in 180 s"
            time.sleep(2)

    def stop_as_a_supervisor(self, grace_s: float = 3.0) -> None:
        """As systemd and ``docker stop`` stop a service: SIGTERM to its process group, SIGKILL a few seconds later."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        time.sleep(grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C
            self.proc.wait(timeout=180)

    def left_behind(self, timeout_s: float = 90.0) -> list[str]:
        """The command lines of the processes it started that are still running after ``timeout_s`` (none once
        it has stopped: its metadata database ends within a second of its last user)."""
        name, value = self.marker.split("=", 1)
        deadline = time.monotonic() + timeout_s
        while True:
            found = [
                " ".join(p.info["cmdline"] or [])
                for p in psutil.process_iter(["cmdline", "environ"])
                if (p.info["environ"] or {}).get(name) == value
            ]
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def db_url(self) -> str:
        """The embedded metadata database's URL (joining it for the moment, as a command does)."""
        from include.orchestration import metadata_db

        with metadata_db.running(self.home) as url:
            return url

    def cli_env(self) -> dict[str, str]:
        """The environment of an ``airflow`` command on this Airflow."""
        from include.core.config import load_settings
        from include.orchestration.airflow_env import airflow_env
        from include.orchestration.metadata_db import CONN_VAR

        return {**airflow_env(load_settings(lake=self.lake), self.env), CONN_VAR: self.db_url()}


@pytest.fixture(scope="module")  # stopped after the DAG's tests: an idle scheduler still takes CPU from the rest
def airflow(lake: str, tmp_path_factory: pytest.TempPathFactory, spark_server: dict[str, str]) -> Iterator[Airflow]:
    """``setlist airflow`` over the e2e lake with nothing configured but its login; its metadata database is the
    embedded default, new (the lake's first day ran through ``setlist run`` on the configured PostgreSQL)."""
    home = Path(tempfile.mkdtemp(prefix="setlist-e2e-airflow-"))
    home.chmod(0o711)  # as root the embedded PostgreSQL runs as the postgres user, who must enter it
    marker = f"SETLIST_TEST_AIRFLOW={home.name}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SETLIST_AIRFLOW_DB_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    }
    env.update(
        AIRFLOW_HOME=str(home),
        SETLIST_AIRFLOW_PASSWORD="e2e-airflow-password",
        XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("config")),
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        SETLIST_TEST_AIRFLOW=home.name,
    )
    running = Airflow(lake, home, servers.free_port(), env, env["SETLIST_AIRFLOW_PASSWORD"], marker)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        assert running.left_behind() == []
        shutil.rmtree(home, ignore_errors=True)
