"""``setlist run``'s Airflow process on a SQLite metadata database (the explicit option): it creates the database
once and sets the pool every Spark task runs in; it marks failed the runs a killed ``setlist run`` left running,
and it waits, up to a limit, for another live run of the DAG (the scheduler's, or one triggered from the UI)
that processes the same date."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

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


RUNS = """
import datetime as dt
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunTriggeredByType, DagRunType

def at(day):
    return dt.datetime.fromisoformat(day + "T00:00:00+00:00")

with create_session() as session:
    # the scheduler's run of 2026-11-03, and a UI-triggered run at another logical date for 2026-11-05
    for run_id, logical, conf, kind in [
        ("scheduled__2026-11-03", "2026-11-03", {}, DagRunType.SCHEDULED),
        ("manual__ui", "2026-12-01", {"run_date": "2026-11-05"}, DagRunType.MANUAL),
        ("manual__done", "2026-11-04", {}, DagRunType.MANUAL),
        ("manual__dead", "2026-11-06", {"run_date": "2026-11-06"}, DagRunType.MANUAL),
    ]:
        state = DagRunState.SUCCESS if run_id == "manual__done" else DagRunState.RUNNING
        by = DagRunTriggeredByType.TEST if run_id == "manual__dead" else DagRunTriggeredByType.UI
        session.add(DagRun(dag_id="setlist_nightly", run_id=run_id, logical_date=at(logical), run_after=at(logical),
                           conf=conf, state=state, run_type=kind, triggered_by=by))
"""

WAIT = """
import datetime as dt, sys
from include.core.log import setup
from include.orchestration.airflow_run import WaitedTooLong, fail_dead_test_runs, wait_for_active_runs
setup()
day, limit = sys.argv[1], float(sys.argv[2])
if sys.argv[3:]:  # what a killed `setlist run` left in the lock: its runs are marked failed first
    fail_dead_test_runs("setlist_nightly", sys.argv[3])
try:
    logical = dt.datetime.fromisoformat(day + "T00:00:00+00:00")
    waited = wait_for_active_runs("setlist_nightly", day, logical, limit, 0.2)
except WaitedTooLong as exc:
    sys.exit(f"gave up: {exc}")
print(f"waited {waited:.1f}", flush=True)
"""


def test_a_run_waits_for_the_schedulers_or_a_triggered_run_of_the_same_date(tmp_path):
    db = tmp_path / "airflow.db"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"}
    for argv in (["-m", "include.orchestration.airflow_run", "prepare"], ["-c", RUNS]):
        done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    # Another date, and a date whose only run has finished: no wait.
    free = subprocess.run([sys.executable, "-c", WAIT, "2026-11-04", "60"], env=env, capture_output=True, text=True)
    assert free.returncode == 0 and "waiting" not in free.stderr + free.stdout, free.stderr[-3000:]

    # A run that `dags test` left running when its `setlist run` was killed: marked failed, then no wait for it.
    holder = "setlist run (pid 4321) of setlist_nightly for 2026-11-06"
    dead = subprocess.run(
        [sys.executable, "-c", WAIT, "2026-11-06", "60", holder], env=env, capture_output=True, text=True
    )
    assert dead.returncode == 0 and "waiting" not in dead.stdout, dead.stderr[-3000:]
    assert "marking manual__dead of 2026-11-06 failed: its setlist run (pid 4321) is gone" in dead.stderr
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT run_id, state FROM dag_run").fetchall())
    assert states["manual__dead"] == "failed" and states["manual__ui"] == "running"  # only runs of `dags test`

    # A live run is waited for until the limit, then one line says so.
    limited = subprocess.run([sys.executable, "-c", WAIT, "2026-11-03", "1"], env=env, capture_output=True, text=True)
    assert limited.returncode == 1, limited.stderr[-3000:]
    assert "gave up after 0 min waiting for scheduled__2026-11-03 (running) of setlist_nightly for 2026-11-03;" in (
        limited.stderr
    )

    # The same logical date as the scheduler's running run, and the run date a UI-triggered run names.
    for day, run_id in (("2026-11-03", "scheduled__2026-11-03"), ("2026-11-05", "manual__ui")):
        waiter = subprocess.Popen(
            [sys.executable, "-c", WAIT, day, "600"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert waiter.stdout is not None
        expected = f"waiting for {run_id} (running) of setlist_nightly for {day} to finish"
        seen = []
        for line in waiter.stdout:  # until it says what it waits for (Airflow's import alone takes seconds)
            seen.append(line)
            if expected in line:
                break
        assert expected in seen[-1], "".join(seen)[-3000:]
        time.sleep(2)
        assert waiter.poll() is None  # still waiting
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE dag_run SET state = 'success' WHERE run_id = ?", (run_id,))
        rest = waiter.stdout.read()
        assert waiter.wait(timeout=120) == 0, rest[-3000:]
        assert float(rest.split("waited ")[1]) >= 2
