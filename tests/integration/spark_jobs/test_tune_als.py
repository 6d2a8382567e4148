"""tune_als on a lake: a search within its budget, recorded, and found by the nightly fits of later days."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from include.core import tables
from include.core.config import load_settings
from include.lake import delta_io, jobs
from include.models import als, tuned_settings
from spark_jobs import tune_als
from tests.checks import folded_as_of

pytestmark = pytest.mark.integration

AFFINITY = "user_key int, track_key int, latest_rating double, strength double"
DAYS = ("2026-11-01", "2026-11-02")


def affinity_rows(day: int) -> list[tuple[int, int, None, float]]:
    """Plays of 40 users on 30 tracks in taste groups: a user plays the tracks of their group (strength by how
    often) and a few others; the second day adds plays."""
    rows = []
    for u in range(40):
        for t in range(30):
            if t % 4 == u % 4 or (u * 7 + t * 3 + day) % 11 == 0:
                rows.append((u, t, None, float(1 + (u + t + day) % 3)))
    return rows


def test_a_tuning_run_records_its_search_and_the_next_nightly_fit_uses_it(spark, tmp_path, caplog):
    lake = str(tmp_path)
    for i, day in enumerate(DAYS):
        folded_as_of(spark, lake, day, spark.createDataFrame(affinity_rows(i), AFFINITY))
    # few iterations to start from keep the fixed candidates quick; the search varies them (5 to 25)
    settings = load_settings(env={}, lake=lake, als_mode="implicit", max_iter=3, tuning_seconds=10, top_k=5)
    caplog.set_level("INFO", logger="include.lake.jobs")
    # a run dated after the newest day (a weekly or asset-triggered run) tunes on the newest day the lake holds
    tune_als.tune(spark, jobs.JobContext("tune_als", dt.date(2026, 11, 5), "tune-run", settings))

    [row] = delta_io.read(spark, tables.OPS_TUNED_SETTINGS, lake).collect()
    assert (row.version, row.mode, row.as_of_date) == ("implicit-2026-11-02", "implicit", "2026-11-02")
    trials = delta_io.read(spark, tables.OPS_TUNING_TRIALS, lake).orderBy("trial").collect()
    assert row.trials == len(trials) >= 3 and row.run_id == "tune-run" and row.duration_seconds > 0
    # the settings that apply, the baseline configuration, the best known settings, then TPE's proposals (as many
    # as the budget leaves room for: tests/unit/models/test_search.py checks what they find)
    assert [t.sampler for t in trials] == ["fixed"] * 3 + ["tpe"] * (len(trials) - 3)
    assert json.loads(trials[0].params) == als.AlsParams.of(settings).as_dict()
    done = [t for t in trials if t.state == "complete"]
    [chosen] = [t for t in trials if t.chosen]
    assert chosen.value == max(t.value for t in done) == row.primary_value  # ndcg: higher is better
    assert json.loads(chosen.params) == json.loads(row.params) and row.start_value == trials[0].value
    assert row.pruned == sum(t.state == "pruned" for t in trials)
    assert (Path(lake) / "reports" / "tuning" / row.version / "search.png").stat().st_size > 0
    assert any("tuned settings implicit-2026-11-02" in r.getMessage() for r in caplog.records)

    # what the nightly fit of a later day uses (the e2e tier runs that fit under the scheduler; the unit tests:
    # a setting given still wins over the tuned one)
    later = tuned_settings.newest(spark, lake, "implicit", "2026-11-03")
    assert later == (row.version, als.AlsParams.from_json(row.params), "ndcg_at_5", row.primary_value)
    # the day the settings were tuned on does not see them: a rerun of it fits what its first run fitted
    assert tuned_settings.newest(spark, lake, "implicit", DAYS[1]) is None
    assert tuned_settings.newest(spark, lake, "explicit", "2026-11-03") is None


def test_a_tuning_run_before_any_gold_says_so_in_one_line(spark, tmp_path):
    settings = load_settings(env={}, lake=str(tmp_path), tuning_seconds=10)
    with pytest.raises(jobs.FitError, match=r"nothing to tune on: gold.user_track_affinity holds no day on or before"):
        tune_als.tune(spark, jobs.JobContext("tune_als", dt.date(2026, 11, 5), "tune-run", settings))
