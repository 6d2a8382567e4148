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

pytestmark = pytest.mark.integration

AFFINITY = "user_key int, track_key int, latest_rating double, strength double, as_of_date string"


def test_an_explicit_run_can_serve_implicit_als_and_keeps_its_rating_metrics(spark, tmp_path):
    lake, day = str(tmp_path), "2026-11-03"
    rows = [
        (u, t, float(1 + (u * 7 + t * 3) % 5), 1.0, day) for u in range(30) for t in range(20) if (u + t) % 3
    ]  # fmt: skip
    affinity = spark.createDataFrame(rows, AFFINITY)
    delta_io.overwrite_partition(affinity, tables.GOLD_AFFINITY, lake, day)
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
