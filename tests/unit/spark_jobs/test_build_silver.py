"""build_silver's transforms: typing, checks with reasons, dedupe and stable keys."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from expectations import suites
from include.core import schemas, tables
from include.core.config import ConfigError
from include.quality import runner as quality
from spark_jobs import build_silver as silver

pytestmark = pytest.mark.unit
GOOD = ("e1", "u1", "t1", "2026-11-20T10:00:00Z", "1000", "false", "true", "4.5", None, "f.csv", 1)
DAY = dt.date(2026, 11, 20)


def bronze(spark, rows):
    cols = [*schemas.INTERACTION_COLUMNS, schemas.CORRUPT_RECORD, schemas.SOURCE_FILE]
    return spark.createDataFrame(rows, ", ".join(f"{c} string" for c in cols) + f", {schemas.SOURCE_ROW} long")


def typed(spark, rows, catalog=("t1",)):
    known = spark.createDataFrame([(t,) for t in catalog], "track_id string")
    return silver.type_interactions(bronze(spark, rows), known).cache()


def route(spark, rows, catalog=("t1",), severities=""):
    """The row-level suite applied as the job applies it: event_id -> the drop checks it broke."""
    frame = typed(spark, rows, catalog)
    outcome = quality.apply(frame, suites.silver_interaction_rows(DAY, severities))
    got = {r["event_id"]: [] for r in outcome.kept.collect()}
    got.update({r["event_id"]: r[schemas.REASONS] for r in outcome.quarantined.collect()})
    return got, outcome


def test_types_a_good_row(spark):
    row = typed(spark, [GOOD]).first()
    assert row["played_at"] == dt.datetime(2026, 11, 20, 10, 0)  # session time zone is UTC
    assert (row["ms_played"], row["skipped"], row["liked"], row["rating"]) == (1000, False, True, 4.5)
    assert row["known_track"] is True
    assert route(spark, [GOOD])[0] == {"e1": []}


def test_play_counts_are_typed_and_a_bad_count_is_quarantined_with_its_text(spark):
    cols = [*schemas.ALL_INTERACTION_COLUMNS, schemas.CORRUPT_RECORD, schemas.SOURCE_FILE]
    counts = {"c1": "250000", "c2": None, "c3": "0", "c4": "lots", "c5": "2.5", "c6": " 7 "}
    rows = [
        (e, "u1", "t1", "2026-11-20T10:00:00Z", "0", "false", "false", "", n, None, "f.csv", 1)
        for e, n in counts.items()
    ]
    frame = spark.createDataFrame(rows, ", ".join(f"{c} string" for c in cols) + f", {schemas.SOURCE_ROW} long")
    outcome = quality.apply(
        silver.type_interactions(frame, spark.createDataFrame([("t1",)], "track_id string")),
        suites.silver_interaction_rows(DAY),
    )
    assert {r["event_id"]: r["plays"] for r in outcome.kept.collect()} == {"c1": 250_000, "c2": 1, "c6": 7}
    bad = {r["event_id"]: (r[schemas.REASONS], r["_raw"]) for r in outcome.quarantined.collect()}
    assert {e: reasons for e, (reasons, _) in bad.items()} == {e: ["plays_invalid"] for e in ("c3", "c4", "c5")}
    assert '"plays":"lots"' in bad["c4"][1]  # quarantine keeps the count's text


def test_offsets_and_numeric_booleans_parse(spark):
    row = ("e2", "u1", "t1", "2026-11-20T12:00:00+02:00", "0", "1", "0", "", None, "f.csv", 1)
    got = typed(spark, [row]).first()
    assert got["played_at"] == dt.datetime(2026, 11, 20, 10, 0)
    assert (got["skipped"], got["liked"], got["rating"]) == (True, False, None)
    assert route(spark, [row])[0] == {"e2": []}


@pytest.mark.parametrize(
    ("change", "checks"),
    [
        ({1: " "}, ["user_id_missing"]),
        ({1: "u" * 300}, ["user_id_too_long"]),
        ({2: None}, ["track_id_missing", "unknown_track"]),
        ({2: "t404"}, ["unknown_track"]),
        ({3: "yesterday"}, ["played_at_invalid"]),
        ({3: "2026-11-21T00:00:00Z"}, ["played_at_in_future"]),
        ({4: "-5"}, ["ms_played_negative"]),
        ({4: "12abc"}, ["ms_played_invalid"]),
        ({5: "maybe"}, ["skipped_invalid"]),
        ({7: "5.5"}, ["rating_out_of_range"]),
        ({7: "0"}, ["rating_out_of_range"]),
        ({7: "five"}, ["rating_invalid"]),
        ({6: "tru\ufffd"}, ["invalid_utf8", "liked_invalid"]),
    ],
)
def test_each_check_names_the_bad_value(spark, change, checks):
    row = list(GOOD)
    for i, v in change.items():
        row[i] = v
    got, outcome = route(spark, [("ok", *GOOD[1:]), tuple(row)])
    assert got == {"ok": [], "e1": checks}
    assert (outcome.rows, outcome.quarantined_rows) == (2, 1)
    failed = {r.check: r.unexpected_count for r in outcome.results if not r.success}
    assert failed == dict.fromkeys(checks, 1)


def test_warn_checks_keep_the_row_and_severities_can_be_overridden(spark):
    late = ("e3", "u1", "t1", "2026-11-19T23:00:00Z", *GOOD[4:])
    got, outcome = route(spark, [late])
    assert got == {"e3": []}
    assert [(r.check, r.action) for r in outcome.results if not r.success] == [("played_at_late", "warned")]
    got, outcome = route(spark, [late], severities="played_at_late=drop, unknown_track=warn")
    assert got == {"e3": ["played_at_late"]}
    with pytest.raises(ConfigError, match="dq_severity: unknown check 'nope'"):
        suites.silver_interaction_rows(DAY, "nope=drop")
    with pytest.raises(ConfigError, match="allowed severities are warn, fail"):
        suites.silver_interactions("event_id_unique=drop")


def test_unparsable_line_is_quarantined_with_its_text_file_and_row(spark):
    row = ("e9", None, None, None, None, None, None, None, "e9,u1,too,many,fields,x,y,z,w", "f.csv", 7)
    _, outcome = route(spark, [row])
    q = silver.quarantine(outcome.quarantined, "interactions", "run-1", "2026-11-20").first()
    assert q["reasons"].split(",")[0] == "malformed_row"
    assert "too,many" in q["raw"] and q["source_file"] == "f.csv" and q["source_row"] == 7
    assert q["run_id"] == "run-1"


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
    dim = spark.createDataFrame([("u1", 1, "2026-11-19"), ("u5", 2, "2026-11-19")], tables.SILVER_DIM_USER.schema)
    ids = spark.createDataFrame([("u5",), ("u3",), ("u2",), ("u3",)], "user_id string")
    fresh = silver.new_keys(ids, dim, "user_id", "user_key", "2026-11-20")
    assertDataFrameEqual(fresh, [("u2", 3, "2026-11-20"), ("u3", 4, "2026-11-20")])


def test_tracks_out_of_range_features_are_quarantined(spark):
    cols = [*schemas.TRACK_COLUMNS, schemas.CORRUPT_RECORD, schemas.SOURCE_FILE]
    good = ["t1", "Song, Part 2", "A", "B", "rock", "1999", "200000", "120", *["0.5"] * 7, "-8", None, "f"]
    bad = list(good)
    bad[0], bad[8], bad[15] = "t2", "1.5", "9"
    schema = ", ".join(f"{c} string" for c in cols) + f", {schemas.SOURCE_ROW} long"
    df = spark.createDataFrame([(*good, 1), (*bad, 2)], schema)
    outcome = quality.apply(silver.type_tracks(df).cache(), suites.silver_track_rows())
    got = {r["track_id"]: r[schemas.REASONS] for r in outcome.quarantined.collect()}
    assert got == {"t2": ["energy_out_of_range", "loudness_out_of_range"]}
    assert [r["title"] for r in outcome.kept.collect()] == ["Song, Part 2"]


def test_played_on_selects_the_days_of_twenty_years_of_ratings(spark):
    # every other day of 22 years, and a run of consecutive ones: thousands of ranges, no overflow of the JVM stack
    start = dt.date(2000, 1, 1)
    days = [start + dt.timedelta(days=2 * i) for i in range(4000)] + [dt.date(2023, 1, d) for d in range(1, 20)]
    times = [
        (dt.datetime(2000, 1, 1, 23, 59),),  # a day in the list
        (dt.datetime(2000, 1, 2, 12, 0),),  # the day between two listed ones
        (dt.datetime(2023, 1, 10, 0, 0),),  # inside the consecutive run
        (dt.datetime(2023, 1, 20, 0, 0),),  # the day after it
    ]
    frame = spark.createDataFrame(times, "played_at timestamp")
    kept = [r.played_at for r in frame.where(silver.played_on(days)).collect()]
    assert kept == [dt.datetime(2000, 1, 1, 23, 59), dt.datetime(2023, 1, 10, 0, 0)]
    assert frame.where(silver.played_on([])).count() == 0
