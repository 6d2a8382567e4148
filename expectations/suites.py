"""Expectation suites that gate each layer boundary: a failing expectation stops the run before the write.

Each function returns a fresh ``ExpectationSuite`` for the frame a job is about to write. Reads and
writes nothing. The full per-rule severity contract (warn/drop/fail) builds on these.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from include import schemas
from include.quality import context


def _suite(name: str, expectations: list[gxe.Expectation]) -> gx.ExpectationSuite:
    context()
    suite = gx.ExpectationSuite(name=name)
    for expectation in expectations:
        suite.add_expectation(expectation)
    return suite


def _not_null(columns: tuple[str, ...]) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def bronze(source: str, columns: tuple[str, ...]) -> gx.ExpectationSuite:
    """landing -> bronze: the contract's columns plus lineage columns, lineage never null."""
    return _suite(
        f"bronze_{source}",
        [
            gxe.ExpectTableColumnsToMatchSet(column_set=[*columns, *schemas.BRONZE_AUDIT_COLUMNS], exact_match=True),
            *_not_null((schemas.SOURCE_FILE, schemas.INGESTED_AT, schemas.BRONZE_RUN_DATE)),
        ],
    )


def silver_interactions() -> gx.ExpectationSuite:
    """bronze -> silver: typed schema, keys present, event_id unique (value rules quarantine rows first)."""
    return _suite(
        "silver_interactions",
        [
            gxe.ExpectTableColumnsToMatchSet(column_set=schemas.SILVER_INTERACTIONS.fieldNames(), exact_match=True),
            *_not_null(("event_id", "user_key", "track_key", "played_at")),
            gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        ],
    )


def silver_tracks() -> gx.ExpectationSuite:
    return _suite(
        "silver_tracks",
        [
            gxe.ExpectTableColumnsToMatchSet(column_set=schemas.SILVER_TRACKS.fieldNames(), exact_match=True),
            *_not_null(("track_id",)),
            gxe.ExpectColumnValuesToBeUnique(column="track_id"),
        ],
    )


def gold_affinity() -> gx.ExpectationSuite:
    """silver -> gold: every affinity row has both keys and a finite confidence."""
    return _suite(
        "gold_user_track_affinity",
        [
            *_not_null(("user_key", "track_key", "confidence")),
            gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=1),
        ],
    )


def gold_recommendations(top_k: int) -> gx.ExpectationSuite:
    """gold.recommendations: the published schema, nothing null, ranks within 1..K."""
    return _suite(
        "gold_recommendations",
        [
            gxe.ExpectTableColumnsToMatchSet(column_set=schemas.RECOMMENDATIONS.fieldNames(), exact_match=True),
            *_not_null(("user_id", "track_id", "score")),
            gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=top_k),
            gxe.ExpectColumnValuesToBeInSet(column="source", value_set=["als", "popular"]),
        ],
    )
