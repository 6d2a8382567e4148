"""lookup: Delta tables written by Spark, read back through delta-rs and DuckDB (a second implementation)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from include.core import tables
from include.lake import delta_io
from include.serving import lookup
from tests.unit.conftest import recs

pytestmark = pytest.mark.unit


def test_get_recommendations_reads_the_newest_run_best_first(lake):
    got = lookup.get_recommendations("u1", k=2, lake=lake)
    assert [(r["track_id"], r["rank"], r["run_date"]) for r in got] == [
        ("t1", 1, "2026-11-02"),
        ("t3", 2, "2026-11-02"),
    ]
    assert set(got[0]) == set(lookup.RECOMMENDATION_COLUMNS)
    assert lookup.get_recommendations("nobody", lake=lake) == []


def test_a_kept_reader_sees_a_new_run_once_it_is_committed(spark, lake):
    reader = lookup.RecommendationReader(lake)
    assert [r["track_id"] for r in reader.get("u2")] == ["t1"]
    day3 = recs(spark, "2026-11-03", [("u2", "t7", 1, 0.3)])
    delta_io.overwrite_partition(day3, tables.GOLD_RECOMMENDATIONS, lake, "2026-11-03")
    assert [(r["track_id"], r["run_date"]) for r in reader.get("u2")] == [("t7", "2026-11-03")]


def test_duckdb_query_joins_lake_tables_by_their_sql_names(lake):
    columns, rows = lookup.query(
        "SELECT r.rank, t.title FROM gold.recommendations r JOIN silver.tracks t USING (track_id)"
        " WHERE r.user_id = 'u1' AND r.run_date = '2026-11-02' ORDER BY r.rank",
        lake,
    )
    assert columns == ["rank", "title"] and rows == [(1, "One"), (2, "Three"), (3, "Two")]


def test_duckdb_names_the_engine_for_the_affinity_its_files_hold_only_part_of(lake):
    with pytest.raises(
        LookupError, match=r"gold.user_track_affinity is merged on read .*\(setlist sql without --engine duckdb\)"
    ):
        lookup.query("SELECT count(*) FROM gold.user_track_affinity", lake)


def test_clustered_layout_gives_sorted_row_groups_and_a_lookup_reads_few(spark, tmp_path):
    from spark_jobs.recommend import clustered_by_user

    rows = [(f"u{u:03d}", f"t{(u * 7 + r) % 50}", r, 1.0 / r) for u in range(300) for r in range(1, 11)]
    shuffled = recs(spark, "2026-11-01", rows).repartition(3)
    layout = clustered_by_user(shuffled, len(rows))
    small_groups = replace(tables.GOLD_RECOMMENDATIONS, row_group_bytes=2048)
    delta_io.overwrite_partition(layout, small_groups, str(tmp_path), "2026-11-01")
    reader = lookup.RecommendationReader(str(tmp_path))
    got = reader.get("u123", k=3)
    groups = [(g.low, g.high) for g in reader._groups]
    assert len(groups) > 3 and all(h <= low for (_, h), (low, _) in itertools.pairwise(groups))
    assert [(r["user_id"], r["rank"]) for r in got] == [("u123", 1), ("u123", 2), ("u123", 3)]
    assert sum(g.low <= "u123" <= g.high for g in reader._groups) <= 2  # a user may straddle two groups


def test_a_new_users_declared_genres_come_first_in_the_popular_list(lake):
    plain = [r["track_id"] for r in lookup.popular(3, lake)]
    assert plain == ["t1", "t9", "t3"]
    declared = lookup.popular(3, lake, genres=["Pop"])
    assert [(r["rank"], r["track_id"]) for r in declared] == [(1, "t9"), (2, "t1"), (3, "t3")]
    assert declared[0]["score"] == 0.5  # still the share of the most popular track's listeners
    assert [r["track_id"] for r in lookup.popular(2, lake, genres=["rock", "jazz"])] == ["t1", "t3"]
