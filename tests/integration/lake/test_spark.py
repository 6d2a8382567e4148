"""A session started from Python (``setlist evaluate``, the benchmarks): its Python workers are the settings'."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

PROBE = """
import sys
from include.core.config import load_settings
from include.lake.spark import get_spark

spark = get_spark("probe", load_settings(spark_mode="submit", lake=sys.argv[1]))
print("worker:", spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable).first())
spark.stop()
"""


def test_a_local_session_runs_its_python_workers_with_the_settings_interpreter(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_CONNECT", "SETLIST_SPARK"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # not "python3" from PATH, which may be an interpreter without numpy and pyarrow
    assert f"worker: {sys.executable}\n" in done.stdout


def test_a_connect_clients_spark_submit_maps_the_class_archives_of_make_jars(tmp_path):
    """The archives ``make jars`` dumps fit the JVMs of a Connect client's spark-submit as the DAG starts it
    (``-Xshare:on`` makes a JVM fail instead of ignoring an archive it cannot use); the user's own options stay."""
    from include.core.config import load_settings
    from include.lake.spark_conf import client_jvm_env
    from include.orchestration.airflow_env import airflow_env

    settings = load_settings(lake=str(tmp_path))
    env = airflow_env(settings)
    env["SPARK_SUBMIT_OPTS"] = "-Dsetlist.probe=kept"
    env |= {var: f"{opts} -Xshare:on" for var, opts in client_jvm_env(settings.jars_dir, env).items()}
    assert env["SPARK_SUBMIT_OPTS"].startswith("-Dsetlist.probe=kept -XX:TieredStopAtLevel=1 ")
    job = tmp_path / "job.py"
    job.write_text("print('client ran')\n")
    submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    done = subprocess.run(
        [submit, "--remote", "sc://localhost:1", str(job)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "client ran" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
