"""Crashes at every commit point of every job of the nightly run: each job is killed with SIGKILL
(``SETLIST_FAULT``) while writing its first table, then right after each of its Delta commits in turn, then run
again; the lake ends exactly as a clean run of the job leaves it, and a reader after any crash sees each table
whole."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pyspark.testing import assertDataFrameEqual

from include.cli.generate import GenerateSpec, generate
from include.core import schemas, tables
from include.lake import delta_io, faults
from spark_jobs import build_gold, build_silver, ingest_bronze, recommend, train_als
from tests.checks import assert_unchanged, rows, snapshot
from tests import forks

pytestmark = pytest.mark.integration

DAY = "2026-11-20"
JOBS = {"ingest_bronze": ingest_bronze, "build_silver": build_silver, "build_gold": build_gold}
JOBS |= {"train_als": train_als, "recommend": recommend}
# the Delta versions a run read (a crashed run and its retry commit more often than a clean run), the landing
# file paths and the model's path (each lake has its own folder)
LEFT_OUT = frozenset({"input_versions", schemas.SOURCE_FILE, "source_file", "path"})
# Tuning and a long fit add time, not commit points: off and short here, so each crash of train_als is cheap.
ENV = {"SETLIST_TUNE_TRIALS": "0", "SETLIST_RANK": "8", "SETLIST_MAX_ITER": "5"}
BY_SQL_NAME = {t.sql_name: t for t in tables.ALL_TABLES}  # a commit point names its table this way


def _argv(lake: str | Path) -> list[str]:
    return ["--run-date", DAY, "--lake", str(lake)]


class CleanRun:
    """One small day run job by job in this process; the lake as each job left it, and each job's commit points."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.points: dict[str, list[str]] = {}

    def lake(self, after: int) -> Path:
        """The lake after the first ``after`` jobs (0: landed only)."""
        return self.root / f"after-{after}"

    def run(self) -> None:
        lake = self.root / "lake"
        spec = GenerateSpec(str(lake), dt.date.fromisoformat(DAY), 1, users=40, tracks=120, events_per_day=600, seed=9)
        generate(spec)
        shutil.copytree(lake, self.lake(0))
        for i, (step, job) in enumerate(JOBS.items(), start=1):
            trace = self.root / f"{step}.trace"
            with pytest.MonkeyPatch.context() as env:
                env.setenv(faults.TRACE_ENV, str(trace))
                assert job.main(_argv(lake)) == 0, step
            self.points[step] = list(dict.fromkeys(line.split(":", 1)[1] for line in trace.read_text().splitlines()))
            shutil.copytree(lake, self.lake(i))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleanRun]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENV.items():
            env.setenv(name, value)
        run = CleanRun(tmp_path_factory.mktemp("clean"))
        run.run()
        yield run


def _crash(step: str, when: str, table: str, lake: str) -> str:
    """Run the step in a process of its own that kills itself at the fault; its log."""
    env = {**os.environ, **ENV, faults.FAULT_ENV: f"{step}:{when}:{table}"}
    code, log = forks.run(f"spark_jobs.{step}", _argv(lake), env, Path(lake).with_suffix(f".{when}.log"))
    assert code == -signal.SIGKILL, log[-3000:]
    assert f"{step}: crashing " in log, log[-3000:]
    return log


def _table(lake: str, sql_name: str) -> list:
    return rows(BY_SQL_NAME[sql_name], lake, LEFT_OUT) or []


@pytest.mark.parametrize("step", list(JOBS))
def test_a_crash_at_any_commit_point_then_a_rerun_leaves_the_tables_of_a_clean_run(spark, clean, step, tmp_path):
    index = list(JOBS).index(step)
    crashed = str(shutil.copytree(clean.lake(index), tmp_path / "crashed"))
    points = clean.points[step]
    assert points, f"{step} committed nothing"

    first = points[0]
    before = _table(crashed, first)
    _crash(step, "during", first, crashed)  # the write commits whole or not at all
    during = _table(crashed, first)
    committed = {}
    for table in points:  # after each commit in turn: every earlier one is done again on the way
        log = _crash(step, "after", table, crashed)
        assert f"crashing after the commit of {table}" in log
        committed[table] = _table(crashed, table)  # a reader finds the table whole
    assert_one_of(during, before, committed[first])
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENV.items():
            env.setenv(name, value)
        assert JOBS[step].main(_argv(crashed)) == 0
    for table, found in committed.items():  # the rerun rewrote each table to exactly what the crash left
        assert_unchanged({table: _table(crashed, table)}, {table: found})

    assert_unchanged(snapshot(crashed, LEFT_OUT), snapshot(str(clean.lake(index + 1)), LEFT_OUT))
    target = BY_SQL_NAME[first]
    assert delta_io.version(spark, target, crashed) > delta_io.version(spark, target, str(clean.lake(index + 1)))


def test_a_setlist_run_cut_off_by_a_power_cut_then_run_again_ends_as_a_clean_run(spark, clean, tmp_path):
    """A power cut or the OOM killer: SIGKILL at once to every process of ``setlist run`` (its guard, Airflow's
    ``dags test``, the task, spark-submit, the job, the embedded metadata database) right after build_silver's
    first commit, on the default set-up. No cleanup runs, so Airflow's metadata still calls the run running;
    the same command again marks that run failed in one line instead of waiting for it, runs the day, and every
    table ends as a clean run of the three jobs leaves it."""
    lake = str(shutil.copytree(clean.lake(0), tmp_path / "lake"))
    marker = f"SETLIST_TEST_RUN={tmp_path.name}"
    env = {**os.environ, **ENV, "SETLIST_TEST_RUN": tmp_path.name}  # inherited by everything the run starts
    argv = [str(Path(sys.executable).parent / "setlist"), "run", "--lake", lake, "--date", DAY, "--train", "never"]
    with open(tmp_path / "killed.log", "wb") as out:
        first = subprocess.Popen(argv, env=env, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + 600
        while not list((Path(lake) / "silver").glob("*/_delta_log/*.json")):  # build_silver's first commit
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.log").read_text()
            time.sleep(0.05)
        while procs := _with_variable(marker):
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        first.wait()

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert re.search(rf"marking manual__\S+ of {DAY} failed: its setlist run \(pid \d+\) is gone", again.stdout)
    assert "waiting for" not in again.stdout
    assert_unchanged(snapshot(lake, LEFT_OUT), snapshot(str(clean.lake(3)), LEFT_OUT))
    deadline = time.monotonic() + 30  # what the rerun started ended with it (its metadata database within a second)
    while _with_variable(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [" ".join(p.cmdline()) for p in _with_variable(marker)] == []


def _with_variable(variable: str) -> list[psutil.Process]:
    """The processes whose environment holds ``variable`` (NAME=value)."""
    name, value = variable.split("=", 1)
    found = []
    for proc in psutil.process_iter(["environ"]):
        if (proc.info["environ"] or {}).get(name) == value:
            found.append(proc)
    return found


def assert_one_of(found: list, *choices: list) -> None:
    """``found`` equals one of ``choices`` (floats within assertDataFrameEqual's tolerance: a refit's metrics may
    differ in the last digits)."""
    for choice in choices:
        try:
            assertDataFrameEqual(found, choice, checkRowOrder=False)
            return
        except AssertionError:
            continue
    raise AssertionError(f"{len(found)} rows, none of the whole versions")


def test_orphan_data_files_of_a_crashed_write_are_never_read_and_vacuum_removes_them(spark, tmp_path):
    """What a writer killed between writing its data files and committing leaves behind: Parquet files in the
    table's partition folder that no commit names. (A job killed mid-write on the warm Spark leaves none: the
    server finishes or drops the write.)"""
    lake = str(tmp_path / "lake")
    table = tables.GOLD_RECOMMENDATIONS
    now = dt.datetime(2026, 11, 21, 4, 0)
    recs = [(f"u{u}", f"t{r}", r, 1.0 / r, "als", "m1", "run-1", DAY, now) for u in range(20) for r in range(1, 6)]
    day = spark.createDataFrame(recs, table.schema)
    delta_io.overwrite_partition(day, table, lake, DAY)
    found = delta_io.read(spark, table, lake).collect()
    day.drop(table.partition_by).write.parquet(str(tmp_path / "written"))
    partition = Path(table.path(lake)) / f"{table.partition_by}={DAY}"
    orphans = [
        f.rename(partition / f"part-orphan-{i}.parquet") for i, f in enumerate((tmp_path / "written").glob("*.parquet"))
    ]
    assert orphans and all(o.exists() for o in orphans)

    assert sorted(delta_io.read(spark, table, lake).collect()) == sorted(found)  # never read
    with delta_io.session_conf(spark, "spark.databricks.delta.retentionDurationCheck.enabled", "false"):
        delta_io.vacuum(spark, table, lake, retention_hours=0)
    assert not [o for o in orphans if o.exists()]
    assert sorted(delta_io.read(spark, table, lake).collect()) == sorted(found)
