"""Names, locations and partition columns of every table in the lake, and of the landing folders.

Reads and writes nothing: a table's path is ``<lake>/<layer>/<name>``; SQL names are ``<layer>.<name>``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """A lake table; ``cluster_by`` and ``row_group_bytes`` are its physical layout for point lookups."""

    layer: str
    name: str
    partition_by: str | None = None
    cluster_by: str | None = None
    row_group_bytes: int | None = None  # None: Parquet's default (128 MB)

    @property
    def sql_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, lake: str) -> str:
        return f"{lake}/{self.layer}/{self.name}"


RUN_DATE = "run_date"
AS_OF_DATE = "as_of_date"

BRONZE_INTERACTIONS = Table("bronze", "interactions", "_run_date")
BRONZE_TRACKS = Table("bronze", "tracks", "_run_date")
SILVER_INTERACTIONS = Table("silver", "interactions", RUN_DATE)
SILVER_TRACKS = Table("silver", "tracks")
SILVER_DIM_USER = Table("silver", "dim_user")
SILVER_DIM_TRACK = Table("silver", "dim_track")
SILVER_QUARANTINE = Table("silver", "quarantine", RUN_DATE)
GOLD_AFFINITY = Table("gold", "user_track_affinity", AS_OF_DATE)
GOLD_POPULARITY = Table("gold", "track_popularity", AS_OF_DATE)
GOLD_DAILY_METRICS = Table("gold", "daily_metrics", RUN_DATE)
# Sorted by user in small row groups: a one-user lookup reads one group of a few thousand rows.
GOLD_RECOMMENDATIONS = Table("gold", "recommendations", RUN_DATE, cluster_by="user_id", row_group_bytes=256 * 1024)
OPS_MODELS = Table("ops", "models")
OPS_MODEL_RUNS = Table("ops", "model_runs")
OPS_LAYER_COUNTS = Table("ops", "layer_counts", RUN_DATE)
OPS_DQ_RESULTS = Table("ops", "dq_results", RUN_DATE)
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
    OPS_LAYER_COUNTS,
    OPS_DQ_RESULTS,
    OPS_RUN_LOG,
)


def referenced_tables(query: str) -> list[Table]:
    """The lake tables a query names (``gold.recommendations``); all of them when it names none."""
    named = [t for t in ALL_TABLES if re.search(rf"(?<![\w.`]){t.layer}\.{t.name}(?![\w`])", query, re.IGNORECASE)]
    return named or list(ALL_TABLES)


LANDING_SOURCES = ("interactions", "tracks")


def landing_dir(lake: str, source: str, run_date: dt.date) -> str:
    """``<lake>/landing/<source>/date=YYYY-MM-DD``: where raw CSV for one day lands."""
    return f"{lake}/landing/{source}/date={run_date.isoformat()}"


def model_path(lake: str, model_version: str) -> str:
    return f"{lake}/models/als/{model_version}"
