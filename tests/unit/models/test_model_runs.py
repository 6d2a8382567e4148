"""ops.model_runs: the champion of a day, and the runs' plots."""

from __future__ import annotations

import pytest

from include.core import tables
from include.lake import delta_io
from include.models import als, model_runs
from tests.unit.conftest import record

pytestmark = pytest.mark.unit


def test_champion_is_the_newest_promoted_nightly_run_before_the_day(spark, tmp_path):
    lake = str(tmp_path)
    assert model_runs.champion(spark, lake, "implicit", "2026-11-05") is None
    record(spark, lake, "a", "2026-11-01", 0.30, True)
    record(spark, lake, "b", "2026-11-02", 0.20, False)  # refused: never a champion
    record(spark, lake, "e", "2026-11-03", 0.90, True, kind="evaluate")
    record(spark, lake, "x", "2026-11-03", 0.50, True, mode="explicit")
    record(spark, lake, "c", "2026-11-04", 0.31, True)
    assert model_runs.champion(spark, lake, "implicit", "2026-11-04")[:2] == ("a", 0.30)  # a rerun of the 4th
    c = model_runs.champion(spark, lake, "implicit", "2026-11-05")
    assert c is not None and c[:2] == ("c", 0.31) and als.AlsParams.from_json(c.params) == als.AlsParams()
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
