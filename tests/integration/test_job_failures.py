"""Job entry points on bad input: one clear line and a non-zero exit, never a bare stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from include import jobs, schemas
from spark_jobs import build_silver, ingest_bronze

pytestmark = pytest.mark.integration


def _land(lake, source: str, header: str, *lines: str) -> None:
    folder = lake / "landing" / source / "date=2026-11-20"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-00000.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")


@pytest.mark.parametrize("command", ["run", "job"])
def test_missing_delta_jars_name_the_command(tmp_path, command):
    """Without the jars, neither the warm Spark (``setlist run``) nor a job's own driver starts: one line."""
    env = {k: v for k, v in os.environ.items() if k != "SETLIST_SPARK_REMOTE"}
    env.update(
        SETLIST_JARS_DIR=str(tmp_path / "no-jars"), SETLIST_SPARK_MODE="connect" if command == "run" else "submit"
    )
    bin_dir = Path(sys.executable).parent
    if command == "run":
        argv = [str(bin_dir / "setlist"), "run", "--lake", str(tmp_path), "--date", "2026-11-20"]
    else:
        argv = [sys.executable, "-m", "spark_jobs.ingest_bronze", "--run-date", "2026-11-20", "--lake", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    err = done.stderr.strip().splitlines()
    assert done.returncode == jobs.EXIT_USAGE
    assert len(err) == 1 and "Delta jars not found" in err[0] and "make jars" in err[0], done.stderr


def test_invalid_run_date_names_the_argument(tmp_path, capsys):
    code = build_silver.main(["--run-date", "2026-13-01", "--lake", str(tmp_path)])
    assert code == jobs.EXIT_USAGE
    assert "--run-date: expected a date as YYYY-MM-DD, got '2026-13-01'" in capsys.readouterr().err


def test_schema_drift_fails_naming_the_columns(spark, tmp_path, capsys):
    header = ",".join(c if c != "ms_played" else "duration" for c in schemas.INTERACTION_COLUMNS)
    _land(tmp_path, "interactions", header, "e1,u1,t1,2026-11-20T10:00:00Z,1,false,false,")
    code = ingest_bronze.main(["--run-date", "2026-11-20", "--lake", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == jobs.EXIT_DATA
    assert "missing columns ['ms_played'], unexpected columns ['duration']" in err
    assert not (tmp_path / "bronze").exists()


def test_a_day_without_interactions_fails_clearly(spark, tmp_path, capsys):
    code = ingest_bronze.main(["--run-date", "2026-11-20", "--lake", str(tmp_path)])
    assert code == jobs.EXIT_DATA
    assert "no interactions files for 2026-11-20" in capsys.readouterr().err


def test_bom_crlf_quotes_and_bad_lines_all_reach_bronze(spark, tmp_path):
    header = "\ufeff" + ",".join(schemas.INTERACTION_COLUMNS)
    lines = [
        "e1,u1,t1,2026-11-20T10:00:00Z,1000,false,true,4.0\r",
        'e2,"u,2",t1,2026-11-20T10:00:00Z,5,true,false,\r',
        "e3,u3,t1\r",
    ]
    _land(tmp_path, "interactions", header, *lines)
    _land(tmp_path, "tracks", ",".join(schemas.TRACK_COLUMNS))  # header only: an empty catalog day
    assert ingest_bronze.main(["--run-date", "2026-11-20", "--lake", str(tmp_path)]) == 0
    rows = spark.read.format("delta").load(str(tmp_path / "bronze" / "interactions")).orderBy("event_id").collect()
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3"]
    assert rows[1]["user_id"] == "u,2"  # bronze keeps values as they came, CR included
    assert rows[0][schemas.CORRUPT_RECORD] is None and rows[2][schemas.CORRUPT_RECORD] is not None
    assert all(r[schemas.SOURCE_FILE].endswith("part-00000.csv") for r in rows)
    known = spark.createDataFrame([("t1",)], "track_id string")
    typed = build_silver.type_interactions(spark.createDataFrame(rows), known).orderBy("event_id").collect()
    assert [r[schemas.CORRUPT_RECORD] is not None for r in typed] == [False, False, True]
    assert [r[schemas.SOURCE_ROW] for r in typed] == [1, 2, 3]
    assert (typed[0]["rating"], typed[1]["rating"], typed[1]["skipped"]) == (4.0, None, True)


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


def test_missing_day_can_be_an_empty_day(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SETLIST_MISSING_DAY", "empty")
    _land(tmp_path, "tracks", ",".join(schemas.TRACK_COLUMNS))
    for job in (ingest_bronze, build_silver):
        assert job.main(["--run-date", "2026-11-20", "--lake", str(tmp_path)]) == 0
    assert "writing an empty day (missing_day=empty)" in capsys.readouterr().out
    assert spark.read.format("delta").load(str(tmp_path / "silver" / "interactions")).count() == 0
    monkeypatch.setenv("SETLIST_MISSING_DAY", "skip")
    assert ingest_bronze.main(["--run-date", "2026-11-20", "--lake", str(tmp_path)]) == jobs.EXIT_USAGE
    assert "missing_day: must be one of fail, empty, got 'skip'" in capsys.readouterr().err
