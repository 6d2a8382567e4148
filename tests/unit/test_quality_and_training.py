from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from expectations import suites
from include import als, quality
from include.cli import format_table
from include.config import load_settings
from include.jobs import DataQualityError, JobContext
from spark_jobs import build_gold, train_als

pytestmark = pytest.mark.unit

AFFINITY = "user_key int, track_key int, latest_rating double, strength double"


def affinity_frame(spark, rows):
    aff = spark.createDataFrame(rows, "user_key int, track_key int, confidence double")
    dims = (
        spark.createDataFrame([(1,), (2,)], "user_key int"),
        spark.createDataFrame([(2,), (3,), (4,)], "track_key int"),
    )
    return build_gold.with_references(aff, *dims)


def test_gold_suite_passes_good_frames_and_names_each_failed_check(spark):
    results = quality.gate(affinity_frame(spark, [(1, 2, 1.5), (1, 3, 1.0)]), suites.gold_affinity())
    assert results and all(r.success for r in results)
    bad = affinity_frame(spark, [(1, 9, 1.5), (1, 3, 0.5), (2, 4, float("nan")), (7, 4, 2.0)])
    with pytest.raises(DataQualityError) as err:
        quality.gate(bad, suites.gold_affinity())
    message = str(err.value)
    assert "gold_user_track_affinity failed" in message
    assert "user_key_in_dim_user (expect_column_values_to_not_be_null on dim_user_key): 1 of 4 rows" in message
    assert "track_key_in_dim_track" in message and "confidence_finite" in message


def test_gate_catches_schema_drift(spark):
    df = spark.createDataFrame([("e1",)], "event_id string")
    with pytest.raises(DataQualityError, match="silver_interactions_columns"):
        quality.gate(df, suites.silver_interactions())


def test_record_writes_dq_results_then_stops_on_a_failed_check(spark, settings, tmp_path):
    ctx = JobContext("build_gold", dt.date(2026, 11, 20), "run-1", settings.with_overrides(lake=str(tmp_path)))
    bad = affinity_frame(spark, [(1, 9, 1.5)])
    results = quality.validate(bad, suites.gold_affinity("track_key_in_dim_track=warn"))
    quality.record(spark, ctx, results)  # a warning only: no error
    results = quality.validate(bad, suites.gold_affinity())
    with pytest.raises(DataQualityError, match="track_key_in_dim_track"):
        quality.record(spark, ctx, results)
    index = tmp_path / "_data_docs" / "run_date=2026-11-20" / "build_gold" / "index.html"
    assert index.is_file() and "gold_user_track_affinity" in index.read_text()
    rows = spark.read.format("delta").load(f"{tmp_path}/ops/dq_results").collect()
    assert len(rows) == len(results)  # the rerun replaced the first run's rows
    failed = [(r["check"], r["severity"], r["action"], r["unexpected_count"]) for r in rows if not r["success"]]
    assert failed == [("track_key_in_dim_track", "fail", "failed", 1)]


def test_training_set_explicit_uses_ratings_implicit_uses_strength(spark):
    aff = spark.createDataFrame([(1, 10, 4.0, 0.7), (1, 11, None, 1.1)], AFFINITY)
    assertDataFrameEqual(train_als.training_set(aff, "explicit"), [(1, 10, 4.0)])
    implicit = train_als.training_set(aff, "implicit").orderBy("track_key").collect()
    assert [(r.track_key, round(r.rating, 4)) for r in implicit] == [(10, 0.7), (11, 1.1)]


def test_explicit_model_fits_and_predicts_in_the_rating_range(spark):
    rows = [(u, t, float(1 + (u + t) % 5), 0.0) for u in range(6) for t in range(6) if (u * t) % 4 != 1]
    data = train_als.training_set(spark.createDataFrame(rows, AFFINITY), "explicit")
    settings = load_settings(env={}, als_mode="explicit", rank=4, max_iter=5, als_biases="false")
    model = als.fit(data, als.AlsParams.of(settings), blocks=2)
    preds = model.predict(data).select("prediction").collect()
    assert len(preds) == data.count() and all(0 <= p[0] <= 6 for p in preds)
    factors = train_als.factor_rows(model)
    assert factors.count() == 12  # 6 users + 6 tracks
    assert all(r.success for r in quality.gate(factors, suites.model_factors(rank=4)))


def test_factor_suite_names_missing_short_and_non_finite_factors(spark):
    schema = "id int, features array<float>"
    model = als.Factors(
        users=spark.createDataFrame([(1, [0.1, 0.2]), (2, [float("nan"), 0.1]), (3, None)], schema),
        items=spark.createDataFrame([(1, [0.3, float("inf")]), (2, [0.5])], schema),
        rank=2,
        fitted=None,  # type: ignore[arg-type]
    )
    factors = train_als.factor_rows(model)
    assertDataFrameEqual(
        factors.select("side", "id", "length", "finite"),
        [
            ("user", 1, 2, True),
            ("user", 2, 2, False),
            ("user", 3, None, None),
            ("track", 1, 2, False),
            ("track", 2, 1, True),
        ],
    )
    with pytest.raises(DataQualityError) as err:
        quality.gate(factors, suites.model_factors(rank=2))
    message = str(err.value)
    assert "factors_present (expect_column_values_to_not_be_null on features): 1 of 5 rows" in message
    assert "factors_length_is_rank" in message and "factors_finite" in message


def test_format_table_aligns_columns_and_counts_rows():
    out = format_table(["user_id", "rank"], [["user_1", 1], ["u", None]]).splitlines()
    assert out[1] == "| user_id | rank |"
    assert out[3] == "| user_1  | 1    |" and out[4] == "| u       | NULL |"
    assert out[-1] == "(2 rows)"
