"""train_als: the training set per mode, and an explicit fit in the rating range."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from expectations import suites
from include.core.config import load_settings
from include.models import als
from include.quality import runner as quality
from spark_jobs import train_als

pytestmark = pytest.mark.unit

AFFINITY = "user_key int, track_key int, latest_rating double, strength double"


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
