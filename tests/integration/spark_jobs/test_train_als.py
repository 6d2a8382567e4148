"""train_als on a lake: an explicit run that serves implicit ALS saves that model and keeps its rating metrics."""

from __future__ import annotations

import datetime as dt

import pytest

from include.core import tables
from include.core.config import load_settings
from include.lake import delta_io, jobs
from include.models import als
from include.models.model_version import model_version
from spark_jobs import train_als
from tests.checks import folded_as_of

pytestmark = pytest.mark.integration

AFFINITY = "user_key int, track_key int, latest_rating double, strength double"


def test_an_explicit_run_can_serve_implicit_als_and_keeps_its_rating_metrics(spark, tmp_path):
    lake, day = str(tmp_path), "2026-11-03"
    rows = [
        (u, t, float(1 + (u * 7 + t * 3) % 5), 1.0) for u in range(30) for t in range(20) if (u + t) % 3
    ]  # fmt: skip
    affinity = spark.createDataFrame(rows, AFFINITY)
    folded_as_of(spark, lake, day, affinity)
    settings = load_settings(
        env={}, lake=lake, als_mode="explicit", serve_model="implicit", rank=3, max_iter=4, tune_trials=0
    )
    ctx = jobs.JobContext("train_als", dt.date.fromisoformat(day), "test-run", settings)
    train_als.train(spark, ctx)

    version = model_version(settings, day)
    run = delta_io.read(spark, tables.OPS_MODEL_RUNS, lake).where(f"run_key = '{version}'").first()
    assert run.mode == "explicit" and run.metrics["rmse"] > 0 and run.metrics["mae"] > 0  # the rating model's
    assert run.served_mode == "implicit" and "serve_model=implicit" in run.served_reason
    assert run.ranker_metrics["ndcg_at_10"] >= 0
    model = delta_io.read(spark, tables.OPS_MODELS, lake).where(f"model_version = '{version}'").first()
    served = als.AlsParams.from_json(model.params)
    assert model.mode == "implicit" and served.alpha == 3.0  # the saved model is the one that serves
    assert als.Factors.load(model.path).rank == served.rank


def test_a_model_spark_cannot_fit_leaves_the_day_to_popularity_with_one_line(spark, tmp_path, caplog):
    lake, day = str(tmp_path), "2026-11-03"
    # 8 users and a track only skipped: too few for rank 20 (see test_evaluation's tuning test)
    rows = [(u, t, None, 1.0 if (u + t) % 3 == 0 else -1.0) for u in range(8) for t in range(10)]
    rows += [(u, 10, None, -1.0) for u in range(8)]
    folded_as_of(spark, lake, day, spark.createDataFrame(rows, AFFINITY))
    settings = load_settings(env={}, lake=lake, als_mode="implicit", rank=20, max_iter=2, tune_trials=0)
    ctx = jobs.JobContext("train_als", dt.date.fromisoformat(day), "test-run", settings)
    caplog.set_level("INFO", logger="include.lake.jobs")
    train_als.train(spark, ctx)

    [line] = [r.getMessage() for r in caplog.records if "met a singular system" in r.getMessage()]
    assert line.endswith(
        "too few users, tracks or positive ratings for that rank: no model; recommend falls back to popularity"
    )
    assert "implicit ALS with rank 20 and regParam" in line
    assert not (tmp_path / "ops" / "models").exists()  # no model row, no model files
    assert not (tmp_path / "models").exists()
