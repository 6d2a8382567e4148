"""The multi-machine path on one machine: the nightly DAG through ``setlist run`` (Airflow's ``dags test`` on the
embedded SQLite, real spark-submits) with its warm Spark as the driver of a Spark standalone cluster, a master
and two 1-core workers started by ``setlist spark-cluster``'s code on loopback with a shared secret. Executors run
on the workers; the jobs' code stays in the client (no Python UDFs); the Delta jars reach them as ``spark.jars``."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.cli.generate import GenerateSpec, generate
from include.orchestration import spark_cluster
from tests import servers
from tests.e2e.checks import (
    assert_accounting_balances,
    assert_k_unplayed_tracks_per_active_user,
    assert_unchanged,
    snapshot,
)
from tests.e2e.conftest import K, setlist

pytestmark = pytest.mark.e2e

DAY = "2026-10-01"  # not a day of the shared e2e lake: this lake has runs of its own in the same Airflow home
SECRET = "e2e-spark-cluster-secret"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[spark_cluster.Cluster]:
    running = spark_cluster.start(
        tmp_path_factory.mktemp("spark-cluster"), workers=2, cores=1, memory="1536m", cluster_secret=SECRET
    )
    try:
        yield running
    finally:
        spark_cluster.stop(running)
    assert all(p.poll() is not None for p in running.procs)


def run_on_cluster(cluster: spark_cluster.Cluster, lake: Path, config: Path) -> str:
    env = {
        **os.environ,
        "SETLIST_SPARK_MASTER": cluster.master_url,
        "SETLIST_SPARK_REMOTE": "",  # not the test run's local warm Spark: `setlist run` starts one on the cluster
        "SETLIST_SPARK_CLUSTER_SECRET": SECRET,
        "SETLIST_DRIVER_MEMORY": "2g",
        "SETLIST_SHUFFLE_PARTITIONS": "2",
        "SETLIST_MAX_ITER": "5",  # the path is under test here, not the model
        "XDG_CONFIG_HOME": str(config),
    }
    for var in ("SPARK_CONNECT_AUTHENTICATE_TOKEN", "SETLIST_AIRFLOW_DB_URL"):  # Airflow on the embedded SQLite
        env.pop(var, None)
    exe = str(Path(sys.executable).parent / "setlist")
    done = subprocess.run(
        [exe, "run", "--lake", str(lake), "--date", DAY], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_nightly_dag_runs_its_jobs_on_the_workers_and_a_rerun_changes_nothing(spark, cluster, tmp_path):
    for port in (cluster.master_port, cluster.master_ui_port, *cluster.worker_ui_ports):
        assert servers.listen_addresses(port) and all(a.startswith("127.") for a in servers.listen_addresses(port))
    assert [w["cores"] for w in cluster.status()["workers"]] == [1, 1]
    lake = tmp_path / "lake"
    generate(GenerateSpec(str(lake), dt.date.fromisoformat(DAY), 1, users=60, tracks=200, events_per_day=1500, seed=5))

    out = run_on_cluster(cluster, lake, tmp_path / "config")
    for step in ("ingest_bronze", "build_silver", "build_gold", "train_als", "recommend"):
        assert out.count(f"[setlist] {step}: done") == 1, out[-3000:]
    # the warm Spark was the cluster's one application, and each worker ran an executor of it
    [app] = [a for a in cluster.status()["completedapps"] if a["name"] == "setlist-spark"]
    for port in cluster.worker_ui_ports:
        worker = cluster.status(port)
        assert app["id"] in {e["appid"] for e in worker["finishedexecutors"] + worker["executors"]}, worker
    assert_k_unplayed_tracks_per_active_user(spark, str(lake), DAY, K)
    assert_accounting_balances(spark, str(lake))

    # The same day again, on the test run's local warm Spark (train=never: the model stays the cluster's): every
    # table stays exactly as the cluster wrote it.
    before = snapshot(spark, str(lake))
    again = setlist("run", "--lake", str(lake), "--date", DAY, "--train", "never")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert_unchanged(snapshot(spark, str(lake)), before)
