"""Every table of the lake, declared once: SQL name, location, partitioning, physical layout and schema (its DDL
is derived from it); and the landing folders.

Reads and writes nothing: a table's path is ``<lake>/<layer>/<name>``; SQL names are ``<layer>.<name>``. Tables
whose columns are the output of a transform (bronze, gold popularity and metrics) declare no schema.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from include.core.schemas import AUDIO_FEATURES_UNIT


@dataclass(frozen=True)
class Table:
    """A lake table; ``cluster_by`` and ``row_group_bytes`` are its physical layout for point lookups."""

    layer: str
    name: str
    partition_by: str | None = None
    cluster_by: str | None = None
    row_group_bytes: int | None = None  # None: Parquet's default (128 MB)
    schema: StructType | None = None
    stamped: str | None = None  # a timestamp column that takes the time of the write
    merged_on_read: bool = False  # its files hold part of its rows: SQL reads it through a view, never its files

    @property
    def sql_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def declared(self) -> StructType:
        """The declared schema (a table without one is a programming error here)."""
        if self.schema is None:
            raise LookupError(f"{self.sql_name} declares no schema")
        return self.schema

    @property
    def columns(self) -> list[str]:
        return self.declared.fieldNames()

    @property
    def ddl(self) -> str:
        """The schema as a DDL column list (``user_id string, rank int, ...``)."""
        return ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in self.declared.fields)

    def path(self, lake: str) -> str:
        return f"{lake}/{self.layer}/{self.name}"


def _columns(*fields: tuple[str, DataType] | StructField) -> StructType:
    """A schema whose columns are nullable unless given as a ``StructField``."""
    return StructType([f if isinstance(f, StructField) else StructField(f[0], f[1], True) for f in fields])


STRING, INT, LONG, DOUBLE, BOOL, TS = (
    StringType(),
    IntegerType(),
    LongType(),
    DoubleType(),
    BooleanType(),
    TimestampType(),
)
METRICS = MapType(StringType(), DoubleType())

SILVER_INTERACTIONS_SCHEMA = StructType(
    [
        StructField("event_id", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField("track_id", StringType(), False),
        StructField("user_key", IntegerType(), False),
        StructField("track_key", IntegerType(), False),
        StructField("played_at", TimestampType(), False),
        StructField("ms_played", LongType(), False),
        StructField("skipped", BooleanType(), False),
        StructField("liked", BooleanType(), False),
        StructField("rating", DoubleType(), True),
        StructField("run_date", StringType(), False),
        # How many plays the row stands for (a pre-aggregated count; 1 for an event). Added after the first
        # release: partitions written before it read null, which means 1.
        StructField("plays", LongType(), True),
    ]
)

SILVER_TRACKS_SCHEMA = StructType(
    [
        StructField("track_id", StringType(), False),
        StructField("title", StringType(), True),
        StructField("artist", StringType(), True),
        StructField("album", StringType(), True),
        StructField("genre", StringType(), True),
        StructField("release_year", IntegerType(), True),
        StructField("duration_ms", LongType(), True),
        StructField("tempo", DoubleType(), False),
        *[StructField(c, DoubleType(), False) for c in AUDIO_FEATURES_UNIT],
        StructField("loudness", DoubleType(), False),
        StructField("run_date", StringType(), False),
    ]
)

QUARANTINE_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("reasons", StringType(), False),
        StructField("raw", StringType(), True),
        StructField("source_file", StringType(), True),
        StructField("source_row", LongType(), True),
        StructField("run_id", StringType(), True),
        StructField("run_date", StringType(), False),
    ]
)

RECOMMENDATIONS_SCHEMA = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("track_id", StringType(), False),
        StructField("rank", IntegerType(), False),
        StructField("score", DoubleType(), False),
        StructField("source", StringType(), False),
        StructField("model_version", StringType(), True),
        StructField("run_id", StringType(), True),
        StructField("run_date", StringType(), False),
        StructField("generated_at", TimestampType(), False),
    ]
)


# One row per (user, track) pair: the state of every pair, merged on read (include/lake/gold_state.py).
AFFINITY_SCHEMA = _columns(
    ("user_key", INT), ("track_key", INT), ("user_id", STRING), ("track_id", STRING), ("plays", LONG),
    ("full_plays", LONG), ("total_ms_played", LONG), ("last_played_at", TS), ("latest_rating", DOUBLE),
    ("rated_at", TS), ("liked", BOOL), ("strength", DOUBLE), ("confidence", DOUBLE), ("changed_on", STRING),
)  # fmt: skip
DIM_USER_SCHEMA = _columns(("user_id", STRING), ("user_key", INT), ("first_seen_date", STRING))
DIM_TRACK_SCHEMA = _columns(("track_id", STRING), ("track_key", INT), ("first_seen_date", STRING))
LAYER_COUNTS_SCHEMA = _columns(
    ("run_date", STRING), ("layer", STRING), ("source", STRING), ("rows_in", LONG), ("rows_out", LONG),
    ("quarantined", LONG), ("duplicates", LONG), ("run_id", STRING),
)  # fmt: skip
DQ_RESULTS_SCHEMA = _columns(
    ("run_date", STRING), ("run_id", STRING), ("layer", STRING), ("suite", STRING), ("check", STRING),
    ("expectation", STRING), ("column", STRING), ("severity", STRING), ("success", BOOL), ("element_count", LONG),
    ("unexpected_count", LONG), ("unexpected_percent", DOUBLE), ("action", STRING), ("validated_at", TS),
)  # fmt: skip
MODEL_RUNS_SCHEMA = _columns(
    ("run_key", STRING), ("kind", STRING), ("run_date", STRING), ("source", STRING), ("mode", STRING),
    ("params", STRING), ("tuned", BOOL), ("trials", STRING), ("k", INT), ("metrics", METRICS),
    ("baseline_metrics", METRICS), ("popularity_metrics", METRICS), ("primary_metric", STRING),
    ("primary_value", DOUBLE), ("champion_run_key", STRING), ("champion_value", DOUBLE), ("promoted", BOOL),
    ("decision", STRING), ("input_versions", STRING), ("code_version", STRING), ("training_rows", LONG),
    ("fit_seconds", DOUBLE), ("rows_per_second", DOUBLE), ("duration_seconds", DOUBLE), ("run_id", STRING),
    ("evaluated_at", TS),
    # which model writes gold.recommendations and why; explicit runs: implicit ALS's metrics on the same split
    ("served_mode", STRING), ("served_reason", STRING), ("ranker_metrics", METRICS),
    # where the parameters came from (set, a tuning run's version, the mode's best known) and whether the
    # evaluation fell so far below the tuned settings' own metric that the next tuning run is due at once
    ("params_source", STRING), ("tuned_version", STRING), ("tuning_due", BOOL),
)  # fmt: skip
# One row per tuning run (MERGE on version, ``<mode>-<as_of_date>``): the settings it found and on what data.
TUNED_SETTINGS_SCHEMA = _columns(
    ("version", STRING), ("mode", STRING), ("as_of_date", STRING), ("params", STRING), ("primary_metric", STRING),
    ("primary_value", DOUBLE), ("baseline_value", DOUBLE), ("start_value", DOUBLE), ("trials", INT),
    ("pruned", INT), ("failed", INT), ("budget_seconds", DOUBLE), ("duration_seconds", DOUBLE),
    ("training_rows", LONG), ("users", LONG), ("tracks", LONG), ("input_versions", STRING),
    ("code_version", STRING), ("note", STRING), ("run_id", STRING), ("tuned_at", TS),
)  # fmt: skip
# Every trial of a tuning run, in the order they started (the run's version partition is replaced on rerun).
TUNING_TRIALS_SCHEMA = _columns(
    ("version", STRING), ("trial", INT), ("sampler", STRING), ("state", STRING), ("params", STRING),
    ("primary_metric", STRING), ("value", DOUBLE), ("rung_value", DOUBLE), ("seconds", DOUBLE), ("chosen", BOOL),
    ("failed", STRING),
)  # fmt: skip
MODELS_SCHEMA = _columns(
    ("model_version", STRING), ("run_date", STRING), ("mode", STRING), ("params", STRING), ("path", STRING),
    ("training_rows", LONG), ("users", LONG), ("tracks", LONG), ("fit_seconds", DOUBLE), ("run_id", STRING),
    ("trained_at", TS),
)  # fmt: skip


RUN_DATE = "run_date"
AS_OF_DATE = "as_of_date"

BRONZE_INTERACTIONS = Table("bronze", "interactions", "_run_date")
BRONZE_TRACKS = Table("bronze", "tracks", "_run_date")
SILVER_INTERACTIONS = Table("silver", "interactions", RUN_DATE, schema=SILVER_INTERACTIONS_SCHEMA)
SILVER_TRACKS = Table("silver", "tracks", schema=SILVER_TRACKS_SCHEMA)
SILVER_DIM_USER = Table("silver", "dim_user", schema=DIM_USER_SCHEMA)
SILVER_DIM_TRACK = Table("silver", "dim_track", schema=DIM_TRACK_SCHEMA)
SILVER_QUARANTINE = Table("silver", "quarantine", RUN_DATE, schema=QUARANTINE_SCHEMA)
# The state folded as of a day, silver's later days merged on read (include/lake/gold_state.py).
GOLD_AFFINITY = Table("gold", "user_track_affinity", schema=AFFINITY_SCHEMA, merged_on_read=True)
GOLD_POPULARITY = Table("gold", "track_popularity", AS_OF_DATE)
GOLD_DAILY_METRICS = Table("gold", "daily_metrics", RUN_DATE)
# Sorted by user in small row groups: a one-user lookup reads one group of a few thousand rows.
GOLD_RECOMMENDATIONS = Table(
    "gold", "recommendations", RUN_DATE, cluster_by="user_id", row_group_bytes=256 * 1024, schema=RECOMMENDATIONS_SCHEMA
)
OPS_MODELS = Table("ops", "models", schema=MODELS_SCHEMA, stamped="trained_at")
OPS_MODEL_RUNS = Table("ops", "model_runs", schema=MODEL_RUNS_SCHEMA, stamped="evaluated_at")
OPS_TUNED_SETTINGS = Table("ops", "tuned_settings", schema=TUNED_SETTINGS_SCHEMA, stamped="tuned_at")
OPS_TUNING_TRIALS = Table("ops", "tuning_trials", "version", schema=TUNING_TRIALS_SCHEMA)
OPS_LAYER_COUNTS = Table("ops", "layer_counts", RUN_DATE, schema=LAYER_COUNTS_SCHEMA)
OPS_DQ_RESULTS = Table("ops", "dq_results", RUN_DATE, schema=DQ_RESULTS_SCHEMA)
OPS_RUN_LOG = Table("ops", "run_log", RUN_DATE)  # written by Airflow's failure callback through delta-rs

ALL_TABLES = (
    BRONZE_INTERACTIONS,
    BRONZE_TRACKS,
    SILVER_INTERACTIONS,
    SILVER_TRACKS,
    SILVER_DIM_USER,
    SILVER_DIM_TRACK,
    SILVER_QUARANTINE,
    GOLD_AFFINITY,
    GOLD_POPULARITY,
    GOLD_DAILY_METRICS,
    GOLD_RECOMMENDATIONS,
    OPS_MODELS,
    OPS_MODEL_RUNS,
    OPS_TUNED_SETTINGS,
    OPS_TUNING_TRIALS,
    OPS_LAYER_COUNTS,
    OPS_DQ_RESULTS,
    OPS_RUN_LOG,
)

SQL_NAMES = tuple(t.sql_name for t in ALL_TABLES)  # "gold.recommendations", ...


def referenced_tables(query: str) -> list[Table]:
    """The lake tables a query names (``gold.recommendations``); all of them when it names none."""
    named = [t for t in ALL_TABLES if re.search(rf"(?<![\w.`]){t.layer}\.{t.name}(?![\w`])", query, re.IGNORECASE)]
    return named or list(ALL_TABLES)


def unknown_tables(query: str) -> list[str]:
    """The ``<layer>.<name>`` tables a query reads FROM or JOINs that the lake does not have (a lake layer's
    name with a table name no table has), in the query's order."""
    layers = "|".join(sorted({t.layer for t in ALL_TABLES}))
    named = re.findall(rf"\b(?:from|join)\s+((?:{layers})\.\w+)(?![\w.`])", query, re.IGNORECASE)
    return list(dict.fromkeys(n for n in named if n.lower() not in SQL_NAMES))


LANDING_SOURCES = ("interactions", "tracks")


def landing_dir(lake: str, source: str, run_date: dt.date) -> str:
    """``<lake>/landing/<source>/date=YYYY-MM-DD``: where raw CSV for one day lands."""
    return f"{lake}/landing/{source}/date={run_date.isoformat()}"


def model_path(lake: str, model_version: str) -> str:
    return f"{lake}/models/als/{model_version}"
