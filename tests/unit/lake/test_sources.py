"""Source mappings: parsing with clear errors, and files of other shapes turned into the raw CSV contract."""

from __future__ import annotations
import json
import pytest
from pyspark.testing import assertDataFrameEqual
from expectations import suites
from include.core import schemas
from include.core.config import ConfigError
from include.lake import sources
pytestmark = pytest.mark.unit


def test_shipped_mappings_parse():
    assert {"movielens", "movielens-100k"} <= set(sources.shipped())
    ml = sources.load("movielens")
    assert (ml.user_id, ml.track_id, ml.rating, ml.catalog.file) == ("userId", "movieId", "rating", "movies.csv")
    u = sources.load("movielens-100k")
    assert (u.format.delimiter, u.format.header, u.catalog.format.encoding) == ("\t", False, "ISO-8859-1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"user_id": "uid"}, "movielens.user_id: must be one of the columns userId, movieId, rating, timestamp"),
        ({"columns": []}, "movielens.columns: must be a non-empty list"),
        ({"played_at_format": "unix"}, "played_at_format: must be one of epoch_seconds, timestamp, got 'unix'"),
        ({"rating": None}, "needs a rating column (explicit) or a plays column"),
        ({"catalog": {"columns": ["id"], "track_id": "movieId", "file": "m.csv"}}, "movielens.catalog.track_id"),
    ],
)
def test_bad_mappings_name_the_field(tmp_path, change, message):
    raw = {**json.loads((sources.SHIPPED / "movielens.json").read_text()), **change}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sources.load(str(path))


def test_unknown_source_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="--source: must be one of movielens, movielens-100k"):
        sources.load("lastfm")


def test_movielens_rows_become_contract_rows_with_nothing_parsed_away(spark, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,4.0,1260759179\n2,10,abc,oops\n")
    mapping = sources.load("movielens")
    got = sources.interactions(mapping.format.read(spark, str(path)), mapping, "2026-11-22")
    assert tuple(got.columns) == schemas.INTERACTION_COLUMNS
    assertDataFrameEqual(
        got,
        [
            ("movielens:1:31:1260759144", "1", "31", "2009-12-14 02:52:24", "0", "true", "false", "2.5"),
            ("movielens:1:1029:1260759179", "1", "1029", "2009-12-14 02:52:59", "0", "false", "false", "4.0"),
            # kept as text: silver quarantines it under rating_invalid and played_at_invalid
            ("movielens:2:10:oops", "2", "10", "oops", "0", "false", "false", "abc"),
        ],
    )


def test_u_data_and_its_latin1_catalog(spark, tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t5\t891717742\n")
    item = "242|Kolya (1996)|24-Jan-1997||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    (tmp_path / "u.item").write_bytes(
        item.encode("latin-1") + "302|Café (1997)|x||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n".encode("latin-1")
    )
    mapping = sources.load("movielens-100k")
    events = sources.interactions(mapping.format.read(spark, str(tmp_path / "u.data")), mapping, "2026-11-22")
    assert [(r.user_id, r.track_id, r.rating, r.skipped) for r in events.collect()] == [
        ("196", "242", "3", "true"),
        ("186", "302", "5", "false"),
    ]
    catalog = sources.catalog_rows(events, mapping.catalog.format.read(spark, str(tmp_path / "u.item")), mapping)
    assert tuple(catalog.columns) == schemas.TRACK_COLUMNS
    assert sorted((r.track_id, r.title, r.tempo) for r in catalog.collect()) == [
        ("242", "Kolya (1996)", ""),
        ("302", "Café (1997)", ""),
    ]


def test_play_counts_stay_one_row_with_its_count(spark, tmp_path):
    path = tmp_path / "plays.tsv"
    path.write_text("u1\ta\t300000\nu2\tb\tlots\n")
    mapping = sources.parse(
        {
            "name": "counts",
            "delimiter": "\t",
            "header": False,
            "columns": ["user", "artist", "plays"],
            "user_id": "user",
            "track_id": "artist",
            "plays": "plays",
        }
    )
    got = sources.interactions(mapping.format.read(spark, str(path)), mapping, "2026-11-22")
    assert tuple(got.columns) == schemas.ALL_INTERACTION_COLUMNS  # the contract's optional count column
    rows = sorted((r.event_id, r.skipped, r.played_at, r.plays) for r in got.collect())
    assert rows == [
        ("counts:u1:a", "false", "2026-11-22 00:00:00", "300000"),
        ("counts:u2:b", "false", "2026-11-22 00:00:00", "lots"),  # not a count: quarantined in silver
    ]


def test_a_severity_override_may_name_a_check_of_another_suite():
    bronze = suites.bronze("tracks", schemas.TRACK_COLUMNS, "tempo_missing=warn")
    tracks = suites.silver_track_rows("tempo_missing=warn")
    assert tracks.check("tempo_missing").severity == "warn" and bronze.checks
    with pytest.raises(ConfigError, match="dq_severity: unknown check 'tempo_mising'"):
        suites.silver_track_rows("tempo_mising=warn")
