"""The e2e lake: three generated days (one with bad lines), the first run through Airflow once per test
session on a Spark standalone cluster, then shared by the tests of the
pipeline's output and of the explorer; Airflow's metadata in a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from include.cli.generate import GenerateSpec, generate
from include.orchestration import spark_cluster
from tests import servers

DAYS = ("2026-11-01",)  # through `setlist run`; the backfill test then runs all three days
BACKFILL_DAYS = (*DAYS, "2026-11-02", "2026-11-03")
K = 10
BAD_LINE = "ev_bad_1,user_000001,trk_0000001,not-a-time,100,false,false,\n"
SHORT_LINE = "ev_bad_2,user_000001\n"
CLUSTER_SECRET = "e2e-spark-cluster-secret"


def setlist(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "setlist")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=1500)


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
    """Three days land (the first with two bad lines). The first runs through ``setlist run`` with Airflow's
    metadata in PostgreSQL (where the scheduler of the ``airflow`` fixture finds that run later) and its warm
    Spark as the driver of a Spark standalone cluster: a master and two 1-core workers started by
    ``setlist spark-cluster``'s code on loopback with a shared secret, stopped once the day is done. The
    backfill test later runs all three days on the test run's local warm Spark, and the UI test this first
    day again there."""
    root = tmp_path_factory.mktemp("e2e-lake")
    generate(
        GenerateSpec(
            lake=str(root), start=dt.date(2026, 11, 1), days=3, users=60, tracks=200, events_per_day=1500, seed=3
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


@pytest.fixture(scope="module")  # stopped after the DAG's tests: an idle scheduler still takes CPU from the rest
def airflow(lake: str, tmp_path_factory: pytest.TempPathFactory, spark_server: dict[str, str], postgres_url: str):
    """``setlist airflow``'s scheduler, DAG processor and API server on loopback over the e2e lake, with their
    metadata in PostgreSQL (``SETLIST_AIRFLOW_DB_URL``), as the lake's ``setlist run`` had.
    Clock-driven runs are off (``use_job_schedule``): only the tests' backfills and triggers run."""
    from include.core.config import load_settings
    from include.orchestration import airflow_server

    password = "e2e-airflow-password"
    port = servers.free_port()
    env = {
        "SETLIST_AIRFLOW_PASSWORD": password,
        "SETLIST_AIRFLOW_DB_URL": postgres_url,
        "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("config")),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    procs = airflow_server.start(load_settings(lake=lake), port)
    try:
        url = f"http://127.0.0.1:{port}"
        servers.wait_for_http(url + "/api/v2/monitor/health", procs[0], timeout_s=180)
        api = airflow_server.RestClient(url, password)
        deadline = time.monotonic() + 180
        while not api.call("GET", "/api/v2/dags?dag_id_pattern=setlist_nightly")["dags"]:  # a new database
            assert time.monotonic() < deadline, "the DAG processor did not register setlist_nightly in 180 s"
            time.sleep(2)
        yield {"url": url, "port": port, "api": api, "password": password, "db": postgres_url}
    finally:
        airflow_server.stop(procs)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
