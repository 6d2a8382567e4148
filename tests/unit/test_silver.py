from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include import schemas
from spark_jobs import build_silver as silver

pytestmark = pytest.mark.unit

GOOD = ("e1", "u1", "t1", "2026-11-20T10:00:00Z", "1000", "false", "true", "4.5", None, "f.csv")


def bronze(spark, rows):
    cols = [*schemas.INTERACTION_COLUMNS, schemas.CORRUPT_RECORD, schemas.SOURCE_FILE]
    return spark.createDataFrame(rows, ", ".join(f"{c} string" for c in cols))


def reasons(df):
    return {r["event_id"]: r[silver.REASONS] for r in df.collect()}


def test_types_a_good_row(spark):
    typed = silver.type_interactions(bronze(spark, [GOOD]))
    row = typed.first()
    assert row[silver.REASONS] == []
    assert row["played_at"] == dt.datetime(2026, 11, 20, 10, 0)  # session time zone is UTC
    assert (row["ms_played"], row["skipped"], row["liked"], row["rating"]) == (1000, False, True, 4.5)


def test_offsets_and_numeric_booleans_parse(spark):
    row = ("e2", "u1", "t1", "2026-11-20T12:00:00+02:00", "0", "1", "0", "", None, "f.csv")
    typed = silver.type_interactions(bronze(spark, [row])).first()
    assert typed[silver.REASONS] == []
    assert typed["played_at"] == dt.datetime(2026, 11, 20, 10, 0)
    assert (typed["skipped"], typed["liked"], typed["rating"]) == (True, False, None)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({1: " "}, "user_id_missing"),
        ({2: None}, "track_id_missing"),
        ({3: "yesterday"}, "played_at_invalid"),
        ({4: "-5"}, "ms_played_invalid"),
        ({4: "12abc"}, "ms_played_invalid"),
        ({5: "maybe"}, "skipped_invalid"),
        ({7: "5.5"}, "rating_out_of_range"),
        ({7: "0"}, "rating_out_of_range"),
        ({7: "five"}, "rating_out_of_range"),
    ],
)
def test_each_rule_names_the_bad_value(spark, change, rule):
    row = list(GOOD)
    for i, v in change.items():
        row[i] = v
    assert reasons(silver.type_interactions(bronze(spark, [tuple(row)]))) == {"e1": [rule]}


def test_unparsable_line_is_quarantined_with_its_text(spark):
    row = ("e9", None, None, None, None, None, None, None, "e9,u1,too,many,fields,x,y,z,w", "f.csv")
    typed = silver.type_interactions(bronze(spark, [row]))
    q = silver.quarantine(typed, "interactions", "run-1", "2026-11-20").first()
    assert q["reasons"] == "malformed_row"
    assert "too,many" in q["raw"] and q["source_file"] == "f.csv" and q["run_id"] == "run-1"


def test_unknown_tracks_are_flagged_not_dropped(spark):
    typed = silver.type_interactions(bronze(spark, [GOOD, ("e2", *GOOD[1:2], "t404", *GOOD[3:])]))
    flagged = silver.flag_unknown_tracks(typed, spark.createDataFrame([("t1",)], "track_id string"))
    assert reasons(flagged) == {"e1": [], "e2": ["unknown_track"]}


def test_dedupe_keeps_first_and_drops_earlier_days(spark):
    rows = spark.createDataFrame(
        [
            ("e1", "2026-11-20 10:00:00", "b"),
            ("e1", "2026-11-20 09:00:00", "a"),
            ("e2", "2026-11-20 08:00:00", "c"),
            ("e3", "2026-11-20 08:00:00", "d"),
        ],
        "event_id string, played_at string, tag string",
    )
    earlier = spark.createDataFrame([("e3",)], "event_id string")
    out = silver.dedupe(rows, "event_id", ["played_at"], earlier)
    assertDataFrameEqual(out, [("e1", "2026-11-20 09:00:00", "a"), ("e2", "2026-11-20 08:00:00", "c")])


def test_new_keys_continue_after_existing_ones_and_never_renumber(spark):
    dim = spark.createDataFrame([("u1", 1, "2026-11-19"), ("u5", 2, "2026-11-19")], silver.USER_DIM_SCHEMA)
    ids = spark.createDataFrame([("u5",), ("u3",), ("u2",), ("u3",)], "user_id string")
    fresh = silver.new_keys(ids, dim, "user_id", "user_key", "2026-11-20")
    assertDataFrameEqual(fresh, [("u2", 3, "2026-11-20"), ("u3", 4, "2026-11-20")])


def test_tracks_out_of_range_features_are_quarantined(spark):
    cols = [*schemas.TRACK_COLUMNS, schemas.CORRUPT_RECORD, schemas.SOURCE_FILE]
    good = ["t1", "Song, Part 2", "A", "B", "rock", "1999", "200000", "120", *["0.5"] * 7, "-8", None, "f"]
    bad = list(good)
    bad[0], bad[8], bad[15] = "t2", "1.5", "9"
    df = spark.createDataFrame([tuple(good), tuple(bad)], ", ".join(f"{c} string" for c in cols))
    typed = silver.type_tracks(df)
    got = {r["track_id"]: r[silver.REASONS] for r in typed.collect()}
    assert got == {"t1": [], "t2": ["loudness_out_of_range", "energy_out_of_range"]}
    assert silver.valid(typed).select(F.col("title")).first()[0] == "Song, Part 2"
