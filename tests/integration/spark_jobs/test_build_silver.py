"""build_silver on a dirty landing day: every line ends kept, quarantined with a reason, or counted."""

from __future__ import annotations

import pytest

from include.core import schemas
from spark_jobs import build_silver, ingest_bronze
from tests.integration.conftest import _land

pytestmark = pytest.mark.integration


def test_dirty_landing_day_ends_kept_quarantined_or_counted_never_lost(spark, tmp_path, monkeypatch):
    """Invalid UTF-8, a 1 MB field, quoted newlines, wrong column counts, empty and header-only files."""
    folder = tmp_path / "landing" / "interactions" / "date=2026-11-20"
    folder.mkdir(parents=True)
    header = ",".join(schemas.INTERACTION_COLUMNS) + "\n"
    good = "e1,u1,t1,2026-11-20T10:00:00Z,1000,false,true,4.0\n"
    body = (
        header
        + good
        + "e2,u1,t1,2026-11-20T10:00:00Z,1000,false,true,4.0,extra\n"  # wrong column count
        + "e3,"
        + "u" * 1_000_000
        + ",t1,2026-11-20T10:00:00Z,5,false,false,\n"  # a 1 MB field
        + 'e4,"u\nnewline",t1,2026-11-20T10:00:00Z,5,false,false,\n'  # quoted newline
        + "e1,u1,t1,2026-11-20T10:00:00Z,1000,false,true,4.0\n"  # duplicate event_id in one file
    ).encode() + b"e5,u\xff\xfe1,t1,2026-11-20T10:00:00Z,5,false,false,\n"  # invalid UTF-8
    (folder / "part-00000.csv").write_bytes(body)
    (folder / "part-00001.csv").write_bytes(b"")  # empty file
    (folder / "part-00002.csv").write_text(header)  # header only
    (folder / "_SUCCESS").write_text("")  # complete (written last)
    catalog = ",".join(schemas.TRACK_COLUMNS) + "\n" + "t1,Song,A,B,rock,1999,200000,120," + "0.5," * 7 + "-8\n"
    _land(tmp_path, "tracks", catalog.strip())
    for job in (ingest_bronze, build_silver):
        assert job.main(["--run-date", "2026-11-20", "--lake", str(tmp_path), "--run-id", "dirty"]) == 0
    read = lambda name: spark.read.format("delta").load(str(tmp_path / name))  # noqa: E731
    assert read("bronze/interactions").count() == 6
    q = {r["raw"][:40]: r["reasons"] for r in read("silver/quarantine").where("source = 'interactions'").collect()}
    reasons = sorted(q.values())
    assert len(reasons) == 3
    assert any(r.startswith("malformed_row") for r in reasons)
    assert "user_id_too_long" in reasons and "invalid_utf8" in reasons
    kept = {r["event_id"]: r["user_id"] for r in read("silver/interactions").collect()}
    assert kept == {"e1": "u1", "e4": "u\nnewline"}
    counts = read("ops/layer_counts").where("source = 'interactions'").first()
    assert (counts["rows_in"], counts["rows_out"], counts["quarantined"], counts["duplicates"]) == (6, 2, 3, 1)
    dq = {r["check"]: r for r in read("ops/dq_results").where("suite != 'bronze_tracks'").collect()}
    assert dq["file_utf8"]["action"] == "warned" and dq["file_utf8"]["unexpected_count"] == 1
    assert dq["user_id_too_long"]["action"] == "quarantined"
