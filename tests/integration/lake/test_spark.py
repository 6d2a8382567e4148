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
