"""The daily report and the failure log: written through delta-rs, read back as files and with Spark."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from include import delta_io, tables

pytestmark = pytest.mark.unit


def test_daily_report_describes_the_newest_run_and_is_replaced_on_rerun(lake):
    from include import report

    day, text = report.build(lake)
    assert day == "2026-11-02" and text.startswith("# Setlist daily report: 2026-11-02")
    assert "| als | m-2026-11-02 | 2 | 4 |" in text  # source, model, users, rows of the newest run only
    assert "## Data quality\n(none)" in text  # no ops tables in this lake yet: said, not an error
    path = report.write(lake)
    assert path == f"{lake}/reports/run_date=2026-11-02/report.md"
    assert Path(path).read_text(encoding="utf-8") == text
    report.write(lake)
    assert Path(path).read_text(encoding="utf-8") == text


def test_failure_callback_records_each_failed_try_once(spark, tmp_path, monkeypatch):
    from include import run_log

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
