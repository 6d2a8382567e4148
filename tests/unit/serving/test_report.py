"""The daily report: written through delta-rs, replaced on rerun, with the run's evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.conftest import record

pytestmark = pytest.mark.unit


def test_daily_report_describes_the_newest_run_and_is_replaced_on_rerun(lake):
    from include.serving import report

    day, text = report.build(lake)
    assert day == "2026-11-02" and text.startswith("# Setlist daily report: 2026-11-02")
    assert "| als | m-2026-11-02 | 2 | 4 |" in text  # source, model, users, rows of the newest run only
    assert "## Data quality\n(none)" in text  # no ops tables in this lake yet: said, not an error
    path = report.write(lake)
    assert path == f"{lake}/reports/run_date=2026-11-02/report.md"
    assert Path(path).read_text(encoding="utf-8") == text
    report.write(lake)
    assert Path(path).read_text(encoding="utf-8") == text


def test_the_daily_report_shows_the_runs_evaluation(spark, lake):
    from include.serving import report

    assert "## Model evaluation" in report.build(lake)[1]  # (none) before any evaluated run
    record(spark, lake, "m-2026-11-02", "2026-11-02", 0.30, True)  # the model of the newest run in `lake`
    text = report.build(lake)[1]
    section = text.split("## Model evaluation (held-out split, beside the baselines)\n", 1)[1]
    assert "| m-2026-11-02 | ndcg_at_10 | 0.3 | 0.2 | 0.1 | True | test |" in section
