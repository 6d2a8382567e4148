"""build_silver on a dirty landing day: every line ends kept, quarantined with a reason, or counted."""

from __future__ import annotations

import pytest

from include.core import schemas
from include.lake import gold_state
from spark_jobs import build_gold, build_silver, ingest_bronze
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


def test_play_counts_reach_gold_as_counts_on_a_lake_from_before_the_column(spark, tmp_path):
    """Day 1 is written, then its bronze and silver tables are rewritten without ``plays`` (a lake from before
    the column). Day 2 lands one file without counts and one with them: the tables gain the column, day 1's
    rows count as one play each, a count of 250,000 is one row worth 250,000 plays, a bad count is quarantined."""
    lake = str(tmp_path)
    header = ",".join(schemas.INTERACTION_COLUMNS)
    catalog = ",".join(schemas.TRACK_COLUMNS) + "\n" + "t1,Song,A,B,rock,1999,200000,120," + "0.5," * 7 + "-8"
    day1 = tmp_path / "landing" / "interactions" / "date=2026-11-19"
    day1.mkdir(parents=True)
    (day1 / "part-00000.csv").write_text(header + "\ne1,u1,t1,2026-11-19T10:00:00Z,1000,false,false,\n")
    (day1 / "_SUCCESS").write_text("")
    tracks1 = tmp_path / "landing" / "tracks" / "date=2026-11-19"
    tracks1.mkdir(parents=True)
    (tracks1 / "part-00000.csv").write_text(catalog + "\n")
    (tracks1 / "_SUCCESS").write_text("")
    run = ["--lake", lake, "--run-id", "counts"]
    for job in (ingest_bronze, build_silver):
        assert job.main(["--run-date", "2026-11-19", *run]) == 0
    for name in ("bronze/interactions", "silver/interactions"):
        old = spark.read.format("delta").load(f"{lake}/{name}").drop("plays")
        partition = "_run_date" if name.startswith("bronze") else "run_date"
        writer = old.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        writer.partitionBy(partition).save(f"{lake}/{name}")
        assert "plays" not in spark.read.format("delta").load(f"{lake}/{name}").columns

    day2 = tmp_path / "landing" / "interactions" / "date=2026-11-20"
    day2.mkdir(parents=True)
    (day2 / "part-00000.csv").write_text(header + "\ne10,u1,t1,2026-11-20T10:00:00Z,1000,false,false,\n")
    counted = header + ",plays\ne11,u1,t1,2026-11-20T11:00:00Z,0,false,false,,250000\n"
    (day2 / "part-00001.csv").write_text(counted + "e12,u2,t1,2026-11-20T11:00:00Z,0,false,false,,lots\n")
    (day2 / "_SUCCESS").write_text("")
    for job in (ingest_bronze, build_silver, build_gold):
        assert job.main(["--run-date", "2026-11-20", *run]) == 0

    read = lambda name: spark.read.format("delta").load(f"{lake}/{name}")  # noqa: E731
    bronze = {r["event_id"]: r["plays"] for r in read("bronze/interactions").collect()}
    assert bronze == {"e1": None, "e10": None, "e11": "250000", "e12": "lots"}
    silver = {r["event_id"]: r["plays"] for r in read("silver/interactions").collect()}
    assert silver == {"e1": None, "e10": 1, "e11": 250_000}  # day 1's row: written before the column
    q = read("silver/quarantine").where("run_date = '2026-11-20'").first()
    assert q["reasons"] == "plays_invalid" and '"plays":"lots"' in q["raw"]
    aff = gold_state.as_of(spark, lake, "2026-11-20", alpha=1.0).collect()
    assert [(r["user_id"], r["plays"], r["full_plays"]) for r in aff] == [("u1", 250_002, 250_002)]
    counts = read("ops/layer_counts").where("source = 'interactions' AND run_date = '2026-11-20'").first()
    assert (counts["rows_in"], counts["rows_out"], counts["quarantined"]) == (3, 2, 1)
