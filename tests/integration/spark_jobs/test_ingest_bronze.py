"""ingest_bronze on awkward files: BOM, CRLF, quotes, bad lines, schema drift, empty and missing days,
completeness markers and manifests."""

from __future__ import annotations

import pytest

from include.core import schemas
from include.lake import jobs
from spark_jobs import build_silver, ingest_bronze
from tests.integration.conftest import _land

pytestmark = pytest.mark.integration


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
    bronze = spark.read.format("delta").load(str(tmp_path / "bronze" / "interactions"))
    rows = bronze.orderBy("event_id").collect()
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3"]
    assert rows[1]["user_id"] == "u,2"  # bronze keeps values as they came, CR included
    assert rows[0][schemas.CORRUPT_RECORD] is None and rows[2][schemas.CORRUPT_RECORD] is not None
    assert all(r[schemas.SOURCE_FILE].endswith("part-00000.csv") for r in rows)
    known = spark.createDataFrame([("t1",)], "track_id string")
    typed = build_silver.type_interactions(spark.createDataFrame(rows, bronze.schema), known)
    typed = typed.orderBy("event_id").collect()
    assert [r[schemas.CORRUPT_RECORD] is not None for r in typed] == [False, False, True]
    assert [r[schemas.SOURCE_ROW] for r in typed] == [1, 2, 3]
    assert (typed[0]["rating"], typed[1]["rating"], typed[1]["skipped"]) == (4.0, None, True)
    assert [r["plays"] for r in rows] == [None] * 3 and [r["plays"] for r in typed] == [1, 1, 1]  # no count column


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


def test_a_folder_is_read_only_once_its_marker_is_there_and_matches_its_manifest(spark, tmp_path, capsys):
    """A file still being written (no marker yet) is never read; a manifest's files and row counts must be what
    bronze read, or the day stops with one line saying what differs."""
    header = ",".join(schemas.INTERACTION_COLUMNS)
    line = "e1,u1,t1,2026-11-20T10:00:00Z,1,false,false,"
    _land(tmp_path, "tracks", ",".join(schemas.TRACK_COLUMNS))
    args = ["--run-date", "2026-11-20", "--lake", str(tmp_path)]
    cases = [
        ({"marker": False}, "date=2026-11-20 has no _SUCCESS: a landing folder is read only once"),
        ({"manifest": {"part-00000.csv": 5}}, "row counts differ (listed, read): part-00000.csv 5 vs 2"),
        ({"manifest": {"part-00000.csv": 2, "part-00001.csv": 7}}, "files listed but missing ['part-00001.csv']"),
    ]
    for landing, message in cases:
        _land(tmp_path, "interactions", header, line, line.replace("e1", "e2"), **landing)
        assert ingest_bronze.main(args) == jobs.EXIT_DATA
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not (tmp_path / "bronze").exists()
    (tmp_path / "landing" / "interactions" / "date=2026-11-20" / "_SUCCESS").write_text("{not json")
    assert ingest_bronze.main(args) == jobs.EXIT_DATA
    assert '_SUCCESS: expected empty, or JSON {"files": {"name.csv": rows}}' in capsys.readouterr().err
    _land(tmp_path, "interactions", header, line, line.replace("e1", "e2"), manifest={"part-00000.csv": 2})
    assert ingest_bronze.main(args) == 0
    assert spark.read.format("delta").load(str(tmp_path / "bronze" / "interactions")).count() == 2


def test_a_file_or_a_field_beyond_its_limit_stops_the_day_with_one_line(spark, tmp_path, capsys, monkeypatch):
    """Limits are settings: a file over SETLIST_LANDING_MAX_FILE_MB is refused before it is read, a field over
    SETLIST_LANDING_MAX_FIELD_KB stops the read (rather than one giant value filling the memory)."""
    header = ",".join(schemas.INTERACTION_COLUMNS)
    line = "e1,u1,t1,2026-11-20T10:00:00Z,1,false,false,"
    _land(tmp_path, "tracks", ",".join(schemas.TRACK_COLUMNS))
    args = ["--run-date", "2026-11-20", "--lake", str(tmp_path)]
    _land(tmp_path, "interactions", header, line, "e2," + "u" * 5000 + ",t1,2026-11-20T10:00:00Z,1,false,false,")
    monkeypatch.setenv("SETLIST_LANDING_MAX_FIELD_KB", "1")
    assert ingest_bronze.main(args) == jobs.EXIT_DATA
    err = capsys.readouterr().err
    assert "interactions: cannot read " in err and "part-00000.csv: a field is longer than 1 KB" in err
    assert "Traceback" not in err and not (tmp_path / "bronze").exists()
    monkeypatch.delenv("SETLIST_LANDING_MAX_FIELD_KB")
    monkeypatch.setenv("SETLIST_LANDING_MAX_FILE_MB", "1")
    _land(tmp_path, "interactions", header, line, "e2," + "u" * 1_600_000 + ",t1,2026-11-20T10:00:00Z,1,false,false,")
    assert ingest_bronze.main(args) == jobs.EXIT_DATA
    err = capsys.readouterr().err
    assert "part-00000.csv is 2 MB, over the 1 MB a landing file may be (SETLIST_LANDING_MAX_FILE_MB)" in err
    monkeypatch.delenv("SETLIST_LANDING_MAX_FILE_MB")
    assert ingest_bronze.main(args) == 0  # within the default limits, the same day is read
