"""Writers at once, as real concurrent ``spark-submit --remote`` jobs on the test run's warm Spark: two
``build_silver`` of the same day and one of another day all succeed, each day's partitions hold what one run
writes, and every id has one key (Delta's write conflicts are retried from the new version)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from include.cli.generate import GenerateSpec, generate
from include.core import tables
from include.core.config import PROJECT_ROOT, load_settings
from include.lake.spark_conf import client_jvm_env
from include.orchestration.airflow_env import spark_home
from spark_jobs import build_silver, ingest_bronze
from tests.checks import AUDIT_COLUMNS, read

pytestmark = pytest.mark.integration

DAYS = ("2026-11-20", "2026-11-21")


def _lake(root: Path) -> str:
    """Two landed days with bronze written for both."""
    generate(GenerateSpec(str(root), dt.date.fromisoformat(DAYS[0]), 2, users=50, tracks=150, events_per_day=800, seed=4))
    for day in DAYS:
        assert ingest_bronze.main(["--run-date", day, "--lake", str(root)]) == 0
    return str(root)


def _at_once(lake: str, *days: str) -> list[subprocess.CompletedProcess[str]]:
    """``build_silver`` for each day, all submitted together; their results once all have ended."""
    submit = str(Path(sys.executable).parent / "spark-submit")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYSPARK_PYTHON": sys.executable}
    env["SPARK_HOME"] = str(spark_home())
    env.update(client_jvm_env(load_settings().jars_dir, env))  # the client JVMs' options, as the DAG sets them
    procs = [
        subprocess.Popen(
            [submit, "--remote", os.environ["SETLIST_SPARK_REMOTE"], str(PROJECT_ROOT / "spark_jobs" / "build_silver.py")]
            + ["--run-date", day, "--lake", lake],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day in days
    ]
    results = []
    for proc, day in zip(procs, days, strict=True):
        out, err = proc.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        assert proc.returncode == 0, f"{day}: {err[-3000:]}"
    return results


def _one_key_per_id(spark, lake: str, dim: tables.Table, id_col: str, key_col: str) -> None:
    rows = read(spark, dim, lake).collect()
    assert len(rows) == len({r[id_col] for r in rows}) == len({r[key_col] for r in rows})
    assert sorted(r[key_col] for r in rows) == list(range(1, len(rows) + 1))


def test_runs_of_one_day_and_of_another_at_once_leave_each_day_as_when_run_apart(spark, tmp_path):
    """Two runs of the first day and one of the second, all at once: each day's rows as when the days ran one
    after the other, no duplicates, and one key per id."""
    apart = _lake(tmp_path / "apart")
    together = str(shutil.copytree(apart, tmp_path / "together"))  # the same bronze, ingested once
    for day in DAYS:
        assert build_silver.main(["--run-date", day, "--lake", apart]) == 0
    _at_once(together, DAYS[0], DAYS[0], DAYS[1])
    for dim, id_col, key_col in (
        (tables.SILVER_DIM_USER, "user_id", "user_key"),
        (tables.SILVER_DIM_TRACK, "track_id", "track_key"),
    ):
        _one_key_per_id(spark, together, dim, id_col, key_col)
    # each day's rows as when the days ran one after the other (keys may be numbered in another order)
    left_out = AUDIT_COLUMNS | {"user_key", "track_key", "source_file"}  # the quarantine names each lake's file
    for table in (tables.SILVER_INTERACTIONS, tables.SILVER_QUARANTINE, tables.OPS_LAYER_COUNTS):
        for day in DAYS:
            a, b = (read(spark, table, lake).where(F.col("run_date") == day) for lake in (apart, together))
            assert sorted(a.drop(*left_out).collect()) == sorted(b.drop(*left_out).collect()), table
    silver = read(spark, tables.SILVER_INTERACTIONS, together)
    dim_user = read(spark, tables.SILVER_DIM_USER, together)
    assert silver.join(dim_user, ["user_id", "user_key"], "left_anti").count() == 0  # the keys committed
    assert silver.groupBy("event_id").count().where("count > 1").count() == 0
