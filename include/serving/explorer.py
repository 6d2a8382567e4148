"""What the recommendations explorer (``include/serving/explorer_app.py``) shows, as pandas frames.

Reads, through delta-rs and DuckDB only (never Spark, so a page never waits on a JVM or a running job):
``gold.recommendations`` (newest run), ``gold.track_popularity``, ``gold.daily_metrics``, ``silver.tracks``,
``silver.interactions``, ``silver.quarantine``, ``ops.models``, ``ops.layer_counts``, ``ops.dq_results`` and
``ops.run_log``. Writes nothing. A table that does not exist yet gives an empty frame, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from include.core.schemas import AUDIO_FEATURES_UNIT
from include.serving import lookup

TRACK_DETAILS = ("title", "artist", "genre", "tempo", *AUDIO_FEATURES_UNIT, "loudness")
RECENT_PLAYS = 20
PIPELINE_DAYS = 14


def frame(sql: str, lake: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """The query's result as a frame; empty when a table it reads does not exist yet."""
    columns, rows = lookup.query(sql, lake, params, missing_ok=True)
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class RunSummary:
    run_date: str
    users: int
    rows: int
    tracks_recommended: int
    catalog_tracks: int
    example_user: str

    @property
    def catalog_coverage(self) -> float:
        """Share of the catalog that appears in at least one user's list."""
        return self.tracks_recommended / self.catalog_tracks if self.catalog_tracks else 0.0


def run_summary(lake: str) -> RunSummary:
    """The newest recommendations run; LookupError before the first one."""
    runs = frame(
        "SELECT run_date, count(DISTINCT user_id) AS users, count(*) AS rows,"
        " count(DISTINCT track_id) AS tracks, min(user_id) AS example_user FROM gold.recommendations"
        " WHERE run_date = (SELECT max(run_date) FROM gold.recommendations) GROUP BY run_date",
        lake,
    )
    if runs.empty:
        raise LookupError(f"no gold.recommendations run under {lake} yet: run the pipeline first (make demo)")
    catalog = frame("SELECT count(*) AS n FROM silver.tracks", lake)
    row = runs.iloc[0]
    return RunSummary(
        run_date=str(row["run_date"]),
        users=int(row["users"]),
        rows=int(row["rows"]),
        tracks_recommended=int(row["tracks"]),
        catalog_tracks=int(catalog["n"].iloc[0]) if not catalog.empty else 0,
        example_user=str(row["example_user"]),
    )


@dataclass(frozen=True)
class UserView:
    user_id: str
    known: bool  # False: the newest run has no list for this user; ``recommendations`` is the popular list
    recommendations: pd.DataFrame
    recent: pd.DataFrame


def with_tracks(recs: list[dict[str, Any]], lake: str) -> pd.DataFrame:
    """Recommendation rows with each track's title, artist, genre and audio features, best first."""
    base = pd.DataFrame(recs, columns=list(lookup.RECOMMENDATION_COLUMNS))
    details = frame(
        f"SELECT track_id, {', '.join(TRACK_DETAILS)} FROM silver.tracks WHERE list_contains(?, track_id)",
        lake,
        [base["track_id"].tolist()],
    )
    if details.empty:
        details = pd.DataFrame(columns=["track_id", *TRACK_DETAILS])
    return base.merge(details, on="track_id", how="left").sort_values("rank").reset_index(drop=True)


def user_view(user_id: str, k: int, lake: str) -> UserView:
    """The user's top ``k`` from the newest run (or the popularity list) and their recent listening."""
    recs = lookup.get_recommendations(user_id, k, lake)
    known = bool(recs)
    if not known:
        recs = lookup.popular(k, lake)
    recent = frame(
        "SELECT i.played_at, i.track_id, t.title, t.artist, t.genre, i.ms_played, i.skipped, i.liked, i.rating"
        " FROM silver.interactions i LEFT JOIN silver.tracks t ON t.track_id = i.track_id"
        f" WHERE i.user_id = ? ORDER BY i.played_at DESC LIMIT {RECENT_PLAYS}",
        lake,
        [user_id],
    )
    return UserView(user_id, known, with_tracks(recs, lake), recent)


def models(model_versions: Sequence[str], lake: str) -> pd.DataFrame:
    """The recorded training runs of these model versions (parameters, data size, fit time)."""
    return frame(
        "SELECT model_version, run_date, mode, params, training_rows, users, tracks, fit_seconds, trained_at"
        " FROM ops.models WHERE list_contains(?, model_version) ORDER BY trained_at DESC",
        lake,
        [list(model_versions)],
    )


def model_runs(lake: str, limit: int = 20) -> pd.DataFrame:
    """The newest evaluated training runs: the primary metric for the model, the baseline configuration and
    popularity on the same split, and whether the model was promoted (and why)."""
    return frame(
        "SELECT run_key, run_date, kind, mode, primary_metric AS metric, primary_value AS model,"
        " baseline_metrics[primary_metric] AS baseline_config, popularity_metrics[primary_metric] AS popularity,"
        " metrics['coverage'] AS coverage, promoted, decision"
        f" FROM ops.model_runs ORDER BY evaluated_at DESC LIMIT {int(limit)}",
        lake,
    )


def layer_counts(lake: str) -> pd.DataFrame:
    return frame(
        "SELECT run_date, layer, source, rows_in, rows_out, quarantined, duplicates FROM ops.layer_counts"
        " WHERE CAST(run_date AS DATE) >"
        f" (SELECT CAST(max(run_date) AS DATE) FROM ops.layer_counts) - INTERVAL {PIPELINE_DAYS} DAY"
        " ORDER BY run_date DESC, layer, source",
        lake,
    )


def dq_by_day(lake: str) -> pd.DataFrame:
    return frame(
        "SELECT run_date, count(*) AS checks, sum(CAST(success AS INT)) AS passed,"
        " sum(CASE WHEN success THEN 0 ELSE 1 END) AS not_passed FROM ops.dq_results"
        f" GROUP BY run_date ORDER BY run_date DESC LIMIT {PIPELINE_DAYS}",
        lake,
    )


def dq_not_passed(lake: str) -> pd.DataFrame:
    return frame(
        'SELECT run_date, layer, suite, "check", severity, action, unexpected_count, element_count'
        f" FROM ops.dq_results WHERE NOT success ORDER BY run_date DESC, suite LIMIT {PIPELINE_DAYS * 10}",
        lake,
    )


def quarantine_counts(lake: str) -> pd.DataFrame:
    """Quarantined rows per day, source and first broken rule."""
    return frame(
        "SELECT run_date, source, split_part(reasons, ',', 1) AS rule, count(*) AS rows FROM silver.quarantine"
        f" GROUP BY ALL ORDER BY run_date DESC, rows DESC LIMIT {PIPELINE_DAYS * 10}",
        lake,
    )


def failures(lake: str) -> pd.DataFrame:
    """Failed task tries recorded by Airflow's failure callback (``ops.run_log``)."""
    return frame(f"SELECT * FROM ops.run_log ORDER BY run_date DESC LIMIT {PIPELINE_DAYS}", lake)


def rating_distribution(lake: str) -> pd.DataFrame:
    """Explicit ratings per star value, over all days in ``gold.daily_metrics``."""
    return frame(
        "SELECT e.key AS rating, sum(e.value) AS ratings"
        " FROM (SELECT unnest(map_entries(rating_distribution)) AS e FROM gold.daily_metrics)"
        " GROUP BY e.key ORDER BY e.key",
        lake,
    )


def daily_activity(lake: str) -> pd.DataFrame:
    return frame(
        "SELECT run_date, events, unique_users, unique_tracks, ratings, quarantined_rows FROM gold.daily_metrics"
        " ORDER BY run_date",
        lake,
    )
