"""Whole evaluations on tiny inline data: tuning with real ALS fits (fallbacks, failed candidates, fits side by
side), repeated holdout, biases folded into the factors, implicit ALS scored beside explicit."""

from __future__ import annotations

import math

import pytest
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include.models import als, evaluation
from tests.unit.models.test_evaluation import PAIRS, pairs

pytestmark = pytest.mark.integration


def test_biases_are_folded_into_the_factors(spark, tmp_path):
    data = pairs(spark, users=12, tracks=10)
    params = als.AlsParams(mode="explicit", rank=3, max_iter=4, reg_param=0.1, biases=True)
    mean, user, item = als.biases(data)
    plain = als.estimator(params, blocks=2).fit(als.residuals(data, user, item, mean))
    folded = als.with_biases(plain, mean, user, item)
    assert folded.rank == 5
    expected = (
        als.Factors.of(plain)
        .predict(data)
        .join(user, "user_key")
        .join(item, "track_key")
        .select("user_key", "track_key", (F.col("prediction") + mean + F.col("b_u") + F.col("b_i")).alias("p"))
    )
    got = folded.predict(data).select("user_key", "track_key", F.col("prediction").cast("double").alias("p"))
    assertDataFrameEqual(got, expected, rtol=1e-4, checkRowOrder=False, ignoreNullable=True)
    # The bias-only part alone is what the biases say: user 0's mean + b_u + b_i for track 0.
    bu = user.where("user_key = 0").first()["b_u"]
    bi = item.where("track_key = 0").first()["b_i"]
    uf = folded.users.where("id = 0").first()["features"]
    tf = folded.items.where("id = 0").first()["features"]
    assert uf[-2:] == pytest.approx([1.0, mean + bu], rel=1e-5) and tf[-2:] == pytest.approx([bi, 1.0], rel=1e-5)
    # Saved in Spark ML's format, the folded model is what anyone loads: its transform is the full prediction.
    path = str(tmp_path / "model")
    folded.save(path)
    loaded = ALSModel.load(path)
    assert loaded.rank == 5
    by_spark = loaded.transform(data).select("user_key", "track_key", F.col("prediction").cast("double").alias("p"))
    assertDataFrameEqual(by_spark, expected, rtol=1e-4, checkRowOrder=False, ignoreNullable=True)


def test_tuning_falls_back_to_the_baseline_when_it_does_better_and_says_so(spark):
    data = pairs(spark, users=20, tracks=15).cache()
    split = evaluation.split_for("explicit", data, 42)
    # regParam 50 shrinks every factor to about 0, so its predictions miss ratings of 1 to 5 by far.
    params = als.AlsParams(mode="explicit", rank=2, max_iter=3, reg_param=50.0, biases=False)

    def fitter(d, p):
        return als.fit(d, p, blocks=2)

    best, trials, note = evaluation.tune(split, params, evaluation.Budget(2, 600), 5, fitter)
    assert len(trials) == 2 and [t.get("baseline", False) for t in trials] == [False, True]
    assert trials[1]["rmse"] < trials[0]["rmse"]
    assert best == evaluation.baseline_for("explicit", 42) and [t["chosen"] for t in trials] == [False, True]
    assert note.startswith("the baseline configuration did better on the validation split") and "fell back" in note
    one, _, _ = evaluation.tune(split, params, evaluation.Budget(1, 600), 5, fitter)
    assert one == params  # a budget of one trial tries the configured parameters only


def test_tuning_skips_a_candidate_spark_cannot_fit_and_says_so(spark):
    # 8 users and a track only skipped (strength < 0): implicit ALS leaves that track's system unregularized,
    # and 8 user vectors cannot span rank 20, so Spark's Cholesky solver fails for rank 20.
    rows = [(u, t, 1.0 if (u + t) % 3 == 0 else -1.0) for u in range(8) for t in range(10)]
    data = spark.createDataFrame(rows + [(u, 10, -1.0) for u in range(8)], PAIRS).cache()
    params = als.AlsParams(mode="implicit", rank=20, max_iter=2, reg_param=0.1)

    def fitter(d, p):
        return als.fit(d, p, blocks=2)

    with pytest.raises(als.FitError, match=r"implicit ALS with rank 20 and regParam 0\.1 met a singular system"):
        fitter(data, params)
    split = evaluation.split_for("implicit", data, 42)
    best, trials, note = evaluation.tune(split, params, evaluation.Budget(2, 600), 5, fitter)
    assert best == evaluation.baseline_for("implicit", 42)  # nonnegative: Spark's NNLS solver copes
    assert trials[0]["ndcg_at_5"] is None and "singular system" in trials[0]["failed"] and not trials[0]["chosen"]
    assert trials[1]["ndcg_at_5"] >= 0 and trials[1]["chosen"] and "failed" not in trials[1]
    assert note.endswith("; 1 could not be fitted (" + trials[0]["failed"] + ")")
    with pytest.raises(als.FitError, match="no tuning candidate could be fitted: implicit ALS with rank 20"):
        evaluation.tune(split, params, evaluation.Budget(1, 600), 5, fitter)


def test_fits_side_by_side_give_the_same_tuning_and_report(spark):
    data = pairs(spark, users=20, tracks=15).cache()
    params = als.AlsParams(mode="explicit", rank=2, max_iter=3, biases=False)

    def fitter(d, p):
        return als.fit(d, p, blocks=2)

    alone, together = (
        evaluation.evaluate(data, params, 5, fitter, evaluation.Budget(2, 600), with_baseline=False, workers=w)
        for w in (1, 3)
    )
    assert len(together.trials) == 2 and together.params == alone.params and together.choice == alone.choice
    assert [(t["params"], t["chosen"]) for t in together.trials] == [(t["params"], t["chosen"]) for t in alone.trials]
    assert [t["rmse"] for t in together.trials] == pytest.approx([t["rmse"] for t in alone.trials], rel=1e-6)
    assert together.metrics == pytest.approx(alone.metrics, rel=1e-6)
    assert together.popularity == alone.popularity  # scored beside the model


def test_repeated_holdout_reports_the_mean_of_independent_splits(spark):
    data = pairs(spark, users=20, tracks=15).cache()
    params = als.AlsParams(mode="explicit", rank=3, max_iter=3, biases=False)

    def fitter(d, p):
        return als.fit(d, p, blocks=2)

    catalog = data.select("track_key").distinct().count()
    one = [
        evaluation.evaluate_split(data, params, 5, fitter, evaluation.NO_TUNING, False, catalog, s) for s in (42, 1042)
    ]
    report = evaluation.evaluate(data, params, 5, fitter, with_baseline=False, splits=2)

    assert [s["split_seed"] for s in report.splits] == [42, 1042]
    assert [s["model"] for s in report.splits] == pytest.approx([r.metrics["rmse"] for r in one], rel=1e-6)
    assert one[0].metrics["rmse"] != one[1].metrics["rmse"]  # different splits, different test pairs
    for name in ("rmse", "ndcg_at_5", "coverage"):
        values = [r.metrics[name] for r in one]
        assert report.metrics[name] == pytest.approx(sum(values) / 2, rel=1e-6)
        assert report.metrics[f"{name}_sd"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2), rel=1e-6)
    assert report.popularity["ndcg_at_5"] == pytest.approx(sum(r.popularity["ndcg_at_5"] for r in one) / 2)
    assert report.baseline == {} and report.primary[1] == report.metrics["rmse"]
    # One split is the plain evaluation, with no per-split list.
    single = evaluation.evaluate(data, params, 5, fitter, with_baseline=False)
    assert single.splits == [] and single.metrics["rmse"] == pytest.approx(one[0].metrics["rmse"], rel=1e-6)
    with pytest.raises(ValueError, match="splits must be from 1 to 20"):
        evaluation.evaluate(data, params, 5, fitter, splits=0)


def test_explicit_evaluation_scores_implicit_als_on_the_same_split(spark):
    data = pairs(spark, users=20, tracks=15).cache()
    params = als.AlsParams(mode="explicit", rank=2, max_iter=3, biases=False)

    def fitter(d, p):
        return als.fit(d, p, blocks=2)

    got = evaluation.evaluate(data, params, 5, fitter, with_baseline=False, ranker=True)
    assert {"rmse", "ndcg_at_5"} <= set(got.metrics) and "rmse" not in got.ranker
    assert got.ranker["users_evaluated"] == got.metrics["users_evaluated"]  # the same users, the same split
    assert got.ranker_params.mode == "implicit" and got.ranker_params.alpha == evaluation.RANKER_ALPHA
    assert not evaluation.evaluate(data, params, 5, fitter, with_baseline=False).ranker  # only when asked


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_tuning_compares_the_same_primary_metric_the_report_shows(spark, mode):
    data = pairs(spark, users=20, tracks=15).cache()
    split = evaluation.split_for(mode, data, 42)
    model = als.fit(split.train, als.AlsParams(mode=mode, rank=2, max_iter=3), blocks=2)
    name, _ = evaluation.primary_metric(mode, 5)
    full = evaluation.evaluate_model(model, split, mode, 5, 15)[name]
    assert evaluation.primary_value(model, split, mode, 5) == pytest.approx(full)
