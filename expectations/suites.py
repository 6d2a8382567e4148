"""The data-quality contract between layers: one suite per boundary, every check with a default severity.

warn: the row is kept and counted; drop: the row goes to ``silver.quarantine`` under the check's name;
fail: the job stops before writing, naming the check and its counts. Override a default with the
``dq_severity`` setting (``SETLIST_DQ_SEVERITY="played_at_late=fail,unknown_track=warn"``).
Every result lands in ``ops.dq_results``. Reads and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools

from expectations.checks import (
    WARN,
    Check,
    Suite,
    between,
    columns_are,
    in_set,
    is_null,
    matches,
    max_length,
    not_matches,
    not_null,
    parse_severities,
    table_between,
    table_in_set,
    table_not_null,
    unique,
)
from include.core import schemas, tables
from include.quality.runner import context

MAX_ID_LENGTH = 256
REPLACEMENT_CHAR = "\ufffd"  # what invalid UTF-8 bytes decode to


def _suite(name: str, layer: str, checks: list[Check], overrides: str) -> Suite:
    """A suite with the ``dq_severity`` overrides that name its checks applied (every name in the setting
    must be a check of some suite, so a typo is an error everywhere)."""
    context()  # GX expectations need a context to exist
    suite = Suite(name, layer, tuple(checks))
    if not overrides:
        return suite
    mine = {c.name for c in suite.checks}
    parsed = parse_severities(overrides, all_check_names())
    return suite.with_severities({k: v for k, v in parsed.items() if k in mine})


@functools.cache
def all_check_names() -> tuple[str, ...]:
    """The name of every check in every suite (the names ``dq_severity`` may use)."""
    suites = (
        *[bronze(s, ()) for s in ("interactions", "tracks")],
        silver_interaction_rows(dt.date(2000, 1, 1)),
        silver_interactions(),
        silver_track_rows(),
        silver_tracks(),
        gold_affinity(),
        model_factors(1),
        gold_recommendations(1),
        gold_recommendations_per_user(1),
    )
    return tuple(sorted({c.name for s in suites for c in s.checks}))


def _row_basics(id_columns: tuple[str, ...]) -> list[Check]:
    checks = [
        is_null("malformed_row", schemas.CORRUPT_RECORD),
        not_matches("invalid_utf8", "_raw", REPLACEMENT_CHAR),
    ]
    for column in id_columns:
        checks += [not_null(f"{column}_missing", column), max_length(f"{column}_too_long", column, MAX_ID_LENGTH)]
    return checks


def bronze(source: str, columns: tuple[str, ...], overrides: str = "") -> Suite:
    """landing -> bronze: the contract's header and lineage; unreadable UTF-8 is counted (rows are kept)."""
    return _suite(
        f"bronze_{source}",
        "bronze",
        [
            columns_are("bronze_columns", [*columns, *schemas.BRONZE_AUDIT_COLUMNS, "_raw"]),
            *[
                table_not_null(f"{c.strip('_')}_present", c)
                for c in (schemas.SOURCE_FILE, schemas.INGESTED_AT, schemas.BRONZE_RUN_DATE)
            ],
            not_matches("file_utf8", "_raw", REPLACEMENT_CHAR, severity=WARN),
        ],
        overrides,
    )


def silver_interaction_rows(run_date: dt.date, overrides: str = "") -> Suite:
    """bronze -> silver, row by row: keys present, types parse, values in range, track in the catalog."""
    day_start = dt.datetime.combine(run_date, dt.time())
    day_end = day_start + dt.timedelta(days=1)
    return _suite(
        "silver_interaction_rows",
        "silver",
        [
            *_row_basics(("event_id", "user_id", "track_id")),
            not_null("played_at_invalid", "played_at"),
            between("played_at_in_future", "played_at", high=day_end, strict_max=True),
            between("played_at_late", "played_at", low=day_start, severity=WARN),
            not_null("ms_played_invalid", "ms_played"),
            between("ms_played_negative", "ms_played", low=0),
            not_null("skipped_invalid", "skipped"),
            not_null("liked_invalid", "liked"),
            matches("rating_invalid", "rating_text", schemas.NUMBER),
            between("rating_out_of_range", "rating", 0.5, 5.0),
            not_null("plays_invalid", "plays"),  # a count that is not a whole number of at least 1
            in_set("unknown_track", "known_track", [True]),
        ],
        overrides,
    )


def silver_interactions(overrides: str = "") -> Suite:
    """The silver.interactions frame about to be written: schema, keys, one row per event_id."""
    return _suite(
        "silver_interactions",
        "silver",
        [
            columns_are("silver_interactions_columns", tables.SILVER_INTERACTIONS.columns),
            *[table_not_null(f"{c}_present", c) for c in ("event_id", "user_key", "track_key", "played_at")],
            unique("event_id_unique", "event_id"),
        ],
        overrides,
    )


def silver_track_rows(overrides: str = "") -> Suite:
    """bronze -> silver for the catalog: audio features present and in range."""
    features = []
    for c in schemas.AUDIO_FEATURES_UNIT:
        features += [not_null(f"{c}_missing", c), between(f"{c}_out_of_range", c, 0.0, 1.0)]
    return _suite(
        "silver_track_rows",
        "silver",
        [
            *_row_basics(("track_id",)),
            not_null("tempo_missing", "tempo"),
            between("tempo_not_positive", "tempo", low=0.0, strict_min=True),
            *features,
            not_null("loudness_missing", "loudness"),
            between("loudness_out_of_range", "loudness", -60.0, 5.0),
            matches("release_year_invalid", "release_year_text", r"^[0-9]{1,4}$"),
            matches("duration_ms_invalid", "duration_ms_text", r"^[0-9]+$"),
            not_null("title_missing", "title", severity=WARN),
        ],
        overrides,
    )


def silver_tracks(overrides: str = "") -> Suite:
    return _suite(
        "silver_tracks",
        "silver",
        [
            columns_are("silver_tracks_columns", tables.SILVER_TRACKS.columns),
            unique("track_id_unique", "track_id"),
        ],
        overrides,
    )


def gold_affinity(overrides: str = "") -> Suite:
    """silver -> gold: every affinity row references existing dimension keys; confidence finite and >= 1."""
    return _suite(
        "gold_user_track_affinity",
        "gold",
        [
            table_not_null("user_key_in_dim_user", "dim_user_key"),
            table_not_null("track_key_in_dim_track", "dim_track_key"),
            table_not_null("confidence_present", "confidence"),
            table_between("confidence_at_least_one", "confidence", low=1),
            table_in_set("confidence_finite", "confidence_finite", [True]),
        ],
        overrides,
    )


def model_factors(rank: int, overrides: str = "") -> Suite:
    """ALS output, one row per user or track factor vector: present, of length ``rank``, every value finite."""
    return _suite(
        "model_factors",
        "gold",
        [
            table_not_null("factors_present", "features"),
            table_between("factors_length_is_rank", "length", rank, rank),
            table_in_set("factors_finite", "finite", [True]),
        ],
        overrides,
    )


def gold_recommendations(top_k: int, overrides: str = "") -> Suite:
    """gold.recommendations rows: schema, ids and finite scores, ranks in 1..K, never a played track."""
    return _suite(
        "gold_recommendations",
        "gold",
        [
            columns_are("recommendations_columns", [*tables.GOLD_RECOMMENDATIONS.columns, "played", "finite"]),
            *[table_not_null(f"{c}_present", c) for c in ("user_id", "track_id", "score")],
            table_in_set("score_finite", "finite", [True]),
            table_between("rank_in_range", "rank", 1, top_k),
            table_in_set("source_known", "source", ["als", "content", "popular"]),
            table_in_set("not_already_played", "played", [False]),
        ],
        overrides,
    )


def gold_recommendations_per_user(top_k: int, overrides: str = "") -> Suite:
    """One row per user: exactly K rows with the ranks 1..K (no gap, no repeat)."""
    return _suite(
        "gold_recommendations_per_user",
        "gold",
        [
            table_between("k_rows_per_user", "rows", top_k, top_k),
            table_between("k_distinct_ranks", "distinct_ranks", top_k, top_k),
            table_between("max_rank_is_k", "max_rank", top_k, top_k),
        ],
        overrides,
    )
