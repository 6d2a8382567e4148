"""The raw CSV contract: the landing files' columns, how bronze reads them (all strings) and its audit columns.

The schemas of the tables themselves are declared with the tables (:mod:`include.core.tables`). Column lists
here are the contract documented in docs/contract.md; reads and writes nothing.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    StringType,
    StructField,
    StructType,
)

INTERACTION_COLUMNS = (
    "event_id",
    "user_id",
    "track_id",
    "played_at",
    "ms_played",
    "skipped",
    "liked",
    "rating",
)
# Columns a landing file may add after the required ones, in this order. ``plays``: how many times the row was
# played (a pre-aggregated count); a file without it has one play per row.
OPTIONAL_INTERACTION_COLUMNS = ("plays",)
ALL_INTERACTION_COLUMNS = (*INTERACTION_COLUMNS, *OPTIONAL_INTERACTION_COLUMNS)

AUDIO_FEATURES_UNIT = (
    "energy",
    "danceability",
    "valence",
    "acousticness",
    "instrumentalness",
    "speechiness",
    "liveness",
)

TRACK_COLUMNS = (
    "track_id",
    "title",
    "artist",
    "album",
    "genre",
    "release_year",
    "duration_ms",
    "tempo",
    *AUDIO_FEATURES_UNIT,
    "loudness",
)

# Integer keys of users and tracks (silver onwards), named once for every job, model and kernel.
USER_KEY, TRACK_KEY = "user_key", "track_key"
# What the contract accepts as a number in a text column (ratings, durations, features): silver types it and
# the suites name the rows that do not match.
NUMBER = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)$"

CORRUPT_RECORD = "_corrupt_record"
SOURCE_FILE = "_source_file"
INGESTED_AT = "_ingested_at"
BRONZE_RUN_DATE = "_run_date"
REASONS = "_reasons"  # the names of the drop checks a row broke (empty: the row is kept)
SOURCE_ROW = "_source_row"  # the record's number in its file, 1 = the first row after the header
BRONZE_AUDIT_COLUMNS = (CORRUPT_RECORD, SOURCE_FILE, SOURCE_ROW, INGESTED_AT, BRONZE_RUN_DATE)


def raw_schema(columns: tuple[str, ...]) -> StructType:
    """Landing files are read as strings, so that nothing is lost before typing in silver."""
    return StructType(
        [StructField(c, StringType(), True) for c in columns] + [StructField(CORRUPT_RECORD, StringType(), True)]
    )


RAW_INTERACTIONS = raw_schema(INTERACTION_COLUMNS)  # the required columns: a file without counts
RAW_TRACKS = raw_schema(TRACK_COLUMNS)


def raw_text(columns: tuple[str, ...]) -> Column:
    """A row's raw values (and unparsable text) as one JSON string: what quarantine keeps and what
    whole-row checks such as UTF-8 validity look at."""
    return F.to_json(F.struct(*columns, CORRUPT_RECORD))


def finite(value: Column | str) -> Column:
    """True where ``value`` is a number, not NaN and not infinite (null stays null)."""
    c = F.col(value) if isinstance(value, str) else value
    return ~F.isnan(c) & (F.abs(c) < float("inf"))
