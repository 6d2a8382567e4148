"""``setlist run``'s Airflow process on the embedded default, SQLite: it creates the metadata database once and
sets the pool every Spark task runs in."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from include.orchestration.airflow_run import LOCK_NAME
from include.orchestration.dag_spec import SPARK_POOL, SPARK_POOL_SLOTS

pytestmark = pytest.mark.integration


def test_prepare_creates_the_sqlite_database_and_the_spark_pool_then_finds_them(tmp_path):
    db = tmp_path / "airflow.db"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"}
    argv = [sys.executable, "-m", "include.orchestration.airflow_run", "prepare"]
    for _ in range(2):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT slots FROM slot_pool WHERE pool = ?", (SPARK_POOL,)).fetchall() == [
                (SPARK_POOL_SLOTS,)
            ]
    assert "creating the Airflow metadata database (once)" not in done.stdout + done.stderr  # the second time
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released
