"""build_gold's transforms: affinity, popularity and daily metrics on tiny inline events."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pyspark.testing import assertDataFrameEqual

from include.lake import gold_state
from spark_jobs import build_gold as gold

pytestmark = pytest.mark.unit

T = dt.datetime(2026, 11, 20, 10)
EVENTS_SCHEMA = (
    "user_key int, track_key int, user_id string, track_id string, played_at timestamp, ms_played long,"
    " skipped boolean, liked boolean, rating double, run_date string, plays long"
)


def events(spark):
    """Silver rows: one play each (plays 1, or null as in partitions written before the column existed)."""
    return spark.createDataFrame(
        [
            (1, 10, "u1", "t10", T, 100, False, False, 3.0, "2026-11-19", None),
            (1, 10, "u1", "t10", T + dt.timedelta(hours=1), 50, True, True, None, "2026-11-20", 1),
            (1, 10, "u1", "t10", T + dt.timedelta(hours=2), 70, False, False, 4.5, "2026-11-20", 1),
            (2, 10, "u2", "t10", T, 10, False, False, None, "2026-11-20", 1),
            (2, 11, "u2", "t11", T, 10, True, False, None, "2026-11-20", None),
        ],
        EVENTS_SCHEMA,
    )


def test_a_row_with_a_play_count_counts_as_that_many_plays(spark):
    counted = spark.createDataFrame(
        [
            (1, 10, "u1", "t10", T, 0, False, False, None, "2026-11-20", 250_000),
            (1, 10, "u1", "t10", T, 0, True, False, None, "2026-11-20", 7),  # skipped: plays, not full plays
            (2, 10, "u2", "t10", T, 0, False, False, None, "2026-11-20", 3),
        ],
        EVENTS_SCHEMA,
    )
    aff = gold.affinity(counted, "2026-11-20", alpha=5.0).orderBy("user_id")
    got = [(r["plays"], r["full_plays"], r["strength"], r["confidence"]) for r in aff.collect()]
    assert got == [
        (250_007, 250_000, math.log1p(250_000), 1 + 5 * math.log1p(250_000)),
        (3, 3, math.log1p(3), 1 + 5 * math.log1p(3)),
    ]
    pop = gold.popularity(aff, "2026-11-20").first()
    assert (pop["plays"], pop["full_plays"], pop["listeners"]) == (250_010, 250_003, 2)
    assert gold.daily_metrics(counted, counted.limit(0), "2026-11-20").first()["full_plays"] == 250_003


def test_affinity_aggregates_plays_latest_rating_and_confidence(spark):
    aff = gold.affinity(events(spark), "2026-11-20", alpha=2.0)
    got = aff.select(
        "user_id", "track_id", "plays", "full_plays", "total_ms_played", "latest_rating", "liked", "confidence"
    ).orderBy("user_id", "track_id")
    assertDataFrameEqual(
        got,
        [
            ("u1", "t10", 3, 2, 220, 4.5, True, 1 + 2 * math.log1p(2)),
            ("u2", "t10", 1, 1, 10, None, False, 1 + 2 * math.log1p(1)),
            ("u2", "t11", 1, 0, 10, None, False, 1.0),
        ],
    )


def test_popularity_ranks_by_listeners_then_full_plays(spark):
    state = gold.affinity(events(spark), "2026-11-20", alpha=1.0)
    pop = gold.popularity(state, "2026-11-20").select("track_id", "listeners", "popularity_rank")
    assertDataFrameEqual(pop, [("t10", 2, 1), ("t11", 1, 2)])


def test_a_state_merged_with_the_next_days_rows_equals_the_whole_aggregation(spark):
    """Merge on read: the state up to a day merged with the next day's rows is the aggregation of all the rows,
    the latest rating by time included (a tie at the same time keeps the higher rating, both ways), and the
    popularity moved by the day's plays and new pairs alone is the popularity of the new state."""
    rows = [
        *events(spark).collect(),
        (1, 10, "u1", "t10", T + dt.timedelta(hours=2), 5, False, False, 2.0, "2026-11-21", 1),  # same time as 4.5
        (3, 11, "u3", "t11", T, 5, False, True, None, "2026-11-21", 4),  # a new pair
        (2, 11, "u2", "t11", T + dt.timedelta(days=1), 1, False, False, 1.0, "2026-11-21", 1),  # a later rating
    ]
    everything = spark.createDataFrame(rows, EVENTS_SCHEMA)
    before = gold.full_state(everything.where("run_date <= '2026-11-20'"), alpha=2.0)
    day = everything.where("run_date = '2026-11-21'")
    states = before.select(*gold_state.STATE_COLUMNS).unionByName(gold_state.units(day))
    merged = gold.finished(gold_state.merged(states), alpha=2.0)
    whole = gold.full_state(everything, alpha=2.0)
    assertDataFrameEqual(merged, whole)
    assert {(r["user_id"], r["track_id"]): r["latest_rating"] for r in whole.collect()} == {
        ("u1", "t10"): 4.5, ("u2", "t10"): None, ("u2", "t11"): 1.0, ("u3", "t11"): None,
    }  # fmt: skip
    assert {r["changed_on"] for r in whole.where("user_id = 'u1'").collect()} == {"2026-11-21"}

    fresh = gold.new_pairs(day, before.select("user_key", "track_key"))
    assert [(r["user_key"], r["track_key"]) for r in fresh.collect()] == [(3, 11)]
    moved = gold.popularity_moved(gold.popularity(before, "2026-11-20"), day, fresh, "2026-11-21")
    assertDataFrameEqual(moved, gold.popularity(whole, "2026-11-21"))


def test_daily_metrics_counts_one_day_and_its_rating_distribution(spark):
    day = events(spark).where("run_date = '2026-11-20'")
    q = spark.createDataFrame([("x",)], "reasons string")
    m = gold.daily_metrics(day, q, "2026-11-20").first()
    assert (m["events"], m["unique_users"], m["unique_tracks"], m["ratings"], m["quarantined_rows"]) == (4, 2, 2, 1, 1)
    assert m["rating_distribution"]["4.5"] == 1 and m["rating_distribution"]["3.0"] == 0
