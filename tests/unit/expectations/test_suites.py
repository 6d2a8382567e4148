"""The expectation suites on tiny frames: what passes, and each failed check named."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from expectations import suites
from include.lake.jobs import DataQualityError
from include.models import als
from include.quality import runner as quality
from spark_jobs import train_als
from tests.unit.conftest import affinity_frame

pytestmark = pytest.mark.unit

AFFINITY = "user_key int, track_key int, latest_rating double, strength double"


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
