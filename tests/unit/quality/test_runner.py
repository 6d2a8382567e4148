"""Recording a validation: ops.dq_results written, the lake's Data Docs site updated, then a failed check stops
the job."""

from __future__ import annotations

import datetime as dt

import pytest

from expectations import suites
from include.lake.jobs import DataQualityError, JobContext
from include.quality import runner as quality
from tests.unit.conftest import affinity_frame

pytestmark = pytest.mark.unit

AFFINITY = "user_key int, track_key int, latest_rating double, strength double"


def test_record_writes_dq_results_then_stops_on_a_failed_check(spark, settings, tmp_path):
    ctx = JobContext("build_gold", dt.date(2026, 11, 20), "run-1", settings.with_overrides(lake=str(tmp_path)))
    bad = affinity_frame(spark, [(1, 9, 1.5)])
    results = quality.validate(bad, suites.gold_affinity("track_key_in_dim_track=warn"))
    quality.record(spark, ctx, results)  # a warning only: no error
    results = quality.validate(bad, suites.gold_affinity())
    with pytest.raises(DataQualityError, match="track_key_in_dim_track"):
        quality.record(spark, ctx, results)
    site = tmp_path / "_data_docs"  # one site per lake: GX's static files once, a page per validation
    page = site / "validations" / "run_date=2026-11-20" / "build_gold" / "gold_user_track_affinity.html"
    assert "dim_track_key" in page.read_text() and 'href="../../../static/' in page.read_text()
    assert (site / "static" / "styles").is_dir() and not list(site.glob("run_date=*"))
    index = (site / "index.html").read_text()
    assert "<td>2026-11-20</td><td>build_gold</td>" in index
    assert 'href="validations/run_date=2026-11-20/build_gold/gold_user_track_affinity.html"' in index
    rows = spark.read.format("delta").load(f"{tmp_path}/ops/dq_results").collect()
    assert len(rows) == len(results)  # the rerun replaced the first run's rows
    failed = [(r["check"], r["severity"], r["action"], r["unexpected_count"]) for r in rows if not r["success"]]
    assert failed == [("track_key_in_dim_track", "fail", "failed", 1)]
