"""Crashes at every commit point of ``build_silver`` (the job with the most commits: three MERGEs, the
dimension keys among them, and three partition overwrites): killed with SIGKILL (``SETLIST_FAULT``) while
writing, then right after each of its Delta commits in turn, then run again; the lake ends exactly as a clean
run leaves it, and a reader after any crash sees each table whole."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from include.cli.generate import GenerateSpec, generate
from include.core import schemas, tables
from include.lake import delta_io, faults
from spark_jobs import build_silver, ingest_bronze
from tests.checks import assert_unchanged, rows, snapshot

pytestmark = pytest.mark.integration

DAY = "2026-11-20"
STEP = "build_silver"
# the Delta versions a run read (a crashed run and its retry commit more often than a clean run) and the
# landing file paths (each lake has its own folder)
LEFT_OUT = frozenset({"input_versions", schemas.SOURCE_FILE, "source_file"})


def _lake(root: Path) -> str:
    """One small landed day, bronze written."""
    generate(GenerateSpec(str(root), dt.date.fromisoformat(DAY), 1, users=40, tracks=120, events_per_day=600, seed=9))
    assert ingest_bronze.main(_argv(str(root))) == 0
    return str(root)


def _argv(lake: str) -> list[str]:
    return ["--run-date", DAY, "--lake", lake]


def _crash(when: str, table: str, lake: str) -> str:
    """Run the step in a process of its own that kills itself at the fault; its log."""
    env = {**os.environ, faults.FAULT_ENV: f"{STEP}:{when}:{table}"}
    argv = [sys.executable, "-m", f"spark_jobs.{STEP}", *_argv(lake)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert f"{STEP}: crashing " in done.stderr, done.stderr[-3000:]
    return done.stderr


def _table(spark, lake: str, sql_name: str) -> list:
    [table] = [t for t in tables.ALL_TABLES if t.sql_name == sql_name]
    return rows(spark, table, lake, LEFT_OUT)


def test_a_crash_at_any_commit_point_then_a_rerun_leaves_the_tables_of_a_clean_run(spark, tmp_path, monkeypatch):
    clean, crashed = _lake(tmp_path / "clean"), _lake(tmp_path / "crashed")
    trace = tmp_path / "commit-points.txt"
    monkeypatch.setenv(faults.TRACE_ENV, str(trace))
    assert build_silver.main(_argv(clean)) == 0
    monkeypatch.delenv(faults.TRACE_ENV)
    points = list(dict.fromkeys(line.split(":", 1)[1] for line in trace.read_text().splitlines()))
    assert {tables.SILVER_INTERACTIONS.sql_name, tables.SILVER_DIM_USER.sql_name} <= set(points), points

    first = points[0]
    before = _table(spark, crashed, first)
    _crash("during", first, crashed)  # the write commits whole or not at all
    during = _table(spark, crashed, first)
    committed = {}
    for table in points:  # after each commit in turn: every earlier one is done again on the way
        log = _crash("after", table, crashed)
        assert f"crashing after the commit of {table}" in log
        committed[table] = _table(spark, crashed, table)  # a reader finds the table whole
    assert_one_of(during, before, committed[first])
    assert build_silver.main(_argv(crashed)) == 0
    for table, rows in committed.items():  # the rerun rewrote each table to exactly what the crash left
        assert_unchanged({table: _table(spark, crashed, table)}, {table: rows})

    assert_unchanged(snapshot(spark, crashed, LEFT_OUT), snapshot(spark, clean, LEFT_OUT))
    assert delta_io.version(spark, tables.SILVER_INTERACTIONS, crashed) > delta_io.version(
        spark, tables.SILVER_INTERACTIONS, clean
    )  # the crashed lake really committed more often


def assert_one_of(rows: list, *choices: list) -> None:
    keyed = sorted(map(repr, rows))
    assert any(keyed == sorted(map(repr, c)) for c in choices), f"{len(rows)} rows, none of the whole versions"


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
    rows = delta_io.read(spark, table, lake).collect()
    day.drop(table.partition_by).write.parquet(str(tmp_path / "written"))
    partition = Path(table.path(lake)) / f"{table.partition_by}={DAY}"
    orphans = [f.rename(partition / f"part-orphan-{i}.parquet") for i, f in enumerate((tmp_path / "written").glob("*.parquet"))]
    assert orphans and all(o.exists() for o in orphans)

    assert sorted(delta_io.read(spark, table, lake).collect()) == sorted(rows)  # never read
    with delta_io.session_conf(spark, "spark.databricks.delta.retentionDurationCheck.enabled", "false"):
        delta_io.vacuum(spark, table, lake, retention_hours=0)
    assert not [o for o in orphans if o.exists()]
    assert sorted(delta_io.read(spark, table, lake).collect()) == sorted(rows)
