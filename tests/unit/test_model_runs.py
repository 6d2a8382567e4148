"""ops.model_runs: the champion, the recorded decision, plots, and recommend keeping the champion's lists."""

from __future__ import annotations

import datetime as dt

import pytest

from include import als, delta_io, model_runs, tables
from include.config import load_settings
from include.evaluation import Report
from include.jobs import JobContext
from include.model_version import model_version
from spark_jobs import recommend

pytestmark = pytest.mark.unit


def record(spark, lake, key, day, value, promoted, kind="nightly", mode="implicit"):
    report = Report(
        mode, 10, als.AlsParams(mode=mode), {"ndcg_at_10": value}, {"ndcg_at_10": 0.2}, {"ndcg_at_10": 0.1}, 50, 1.0, []
    )
    decision = model_runs.Decision(promoted, "test")
    values = model_runs.row(
        report,
        run_key=key,
        kind=kind,
        run_date=day,
        source="landing",
        decision=decision,
        versions={},
        code_version="c",
        duration_seconds=1.0,
        run_id="r",
    )
    model_runs.record(spark, lake, values)


def test_champion_is_the_newest_promoted_nightly_run_before_the_day(spark, tmp_path):
    lake = str(tmp_path)
    assert model_runs.champion(spark, lake, "implicit", "2026-11-05") is None
    record(spark, lake, "a", "2026-11-01", 0.30, True)
    record(spark, lake, "b", "2026-11-02", 0.20, False)  # refused: never a champion
    record(spark, lake, "e", "2026-11-03", 0.90, True, kind="evaluate")
    record(spark, lake, "x", "2026-11-03", 0.50, True, mode="explicit")
    record(spark, lake, "c", "2026-11-04", 0.31, True)
    assert model_runs.champion(spark, lake, "implicit", "2026-11-04") == ("a", 0.30)  # a rerun of the 4th
    assert model_runs.champion(spark, lake, "implicit", "2026-11-05") == ("c", 0.31)
    record(spark, lake, "c", "2026-11-04", 0.31, True)  # the same run again replaces its row
    assert delta_io.read(spark, tables.OPS_MODEL_RUNS, lake).count() == 5
    assert model_runs.decision_of(spark, lake, "b") == model_runs.Decision(False, "test")


def test_plots_are_png_files(spark, tmp_path):
    lake = str(tmp_path)
    record(spark, lake, "a", "2026-11-01", 0.30, True)
    record(spark, lake, "c", "2026-11-02", 0.31, True)
    ratings = spark.createDataFrame(
        [(1, 1, 0.69), (1, 2, 1.1), (2, 1, 0.69)], "user_key int, track_key int, rating float"
    )
    paths = model_runs.write_plots(spark, lake, "c", "nightly", "implicit", ratings)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["metrics.png", "ratings.png"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_recommend_keeps_the_champions_lists_when_the_model_is_not_promoted(spark, tmp_path, capsys):
    settings = load_settings(env={}, lake=str(tmp_path))
    day = "2026-11-04"
    record(spark, settings.lake, model_version(settings, day), day, 0.1, False)
    recommend.recommend(spark, JobContext("recommend", dt.date.fromisoformat(day), "r", settings))
    assert "not promoted, gold.recommendations unchanged: test" in capsys.readouterr().out
    assert not delta_io.exists(spark, tables.GOLD_RECOMMENDATIONS, settings.lake)


def test_the_explorer_shows_each_runs_metric_beside_the_baselines(spark, tmp_path):
    from include import explorer

    lake = str(tmp_path)
    assert explorer.model_runs(lake).empty
    record(spark, lake, "a", "2026-11-01", 0.30, True)
    record(spark, lake, "b", "2026-11-02", 0.20, False)
    runs = explorer.model_runs(lake)
    assert list(runs["run_key"]) == ["b", "a"]  # newest first
    first = runs.iloc[1]
    assert (first["metric"], first["model"], first["baseline_config"], first["popularity"]) == (
        "ndcg_at_10",
        0.30,
        0.2,
        0.1,
    )
    assert list(runs["promoted"]) == [False, True]


def test_the_daily_report_shows_the_runs_evaluation(spark, lake):
    from include import report

    assert "## Model evaluation" in report.build(lake)[1]  # (none) before any evaluated run
    record(spark, lake, "m-2026-11-02", "2026-11-02", 0.30, True)  # the model of the newest run in `lake`
    text = report.build(lake)[1]
    section = text.split("## Model evaluation (held-out split, beside the baselines)\n", 1)[1]
    assert "| m-2026-11-02 | ndcg_at_10 | 0.3 | 0.2 | 0.1 | True | test |" in section
