"""The failure callback: each failed try recorded once in ops.run_log."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.core import tables
from include.lake import delta_io

pytestmark = pytest.mark.unit


def test_failure_callback_records_each_failed_try_once(spark, tmp_path, monkeypatch):
    from include.orchestration import run_log

    monkeypatch.setenv("SETLIST_LAKE", str(tmp_path))

    def context(try_number: int) -> dict:
        ti = SimpleNamespace(dag_id="setlist_nightly", task_id="build_silver", run_id="r1", try_number=try_number)
        return {"ti": ti, "params": {"run_date": None}, "ds": "2026-11-02", "exception": RuntimeError("boom")}

    run_log.on_failure(context(1))
    run_log.on_failure(context(1))  # the same try reported twice: one row
    run_log.on_failure(context(2))
    rows = delta_io.read(spark, tables.OPS_RUN_LOG, str(tmp_path)).orderBy("try_number").collect()
    assert [(r.run_date, r.task_id, r.try_number, r.state, r.error) for r in rows] == [
        ("2026-11-02", "build_silver", 1, "failed", "RuntimeError: boom"),
        ("2026-11-02", "build_silver", 2, "failed", "RuntimeError: boom"),
    ]
