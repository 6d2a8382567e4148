"""lookup: Delta tables written by Spark, read back through delta-rs and DuckDB (a second implementation)."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from include import cli, delta_io, lookup, schemas, tables

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 3, 4, 0)


def recs(spark, run_date: str, rows: list[tuple[str, str, int, float]]):
    data = [(u, t, r, s, "als", f"m-{run_date}", "run-1", run_date, NOW) for u, t, r, s in rows]
    return spark.createDataFrame(data, schemas.RECOMMENDATIONS)


@pytest.fixture()
def lake(spark, tmp_path) -> str:
    root = str(tmp_path)
    day1 = [("u1", "t9", 1, 0.1), ("u2", "t9", 1, 0.2)]
    day2 = [("u1", "t3", 2, 0.5), ("u1", "t1", 1, 0.9), ("u1", "t2", 3, 0.4), ("u2", "t1", 1, 0.8)]
    delta_io.overwrite_partition(recs(spark, "2026-11-01", day1), tables.GOLD_RECOMMENDATIONS, root, "2026-11-01")
    delta_io.overwrite_partition(recs(spark, "2026-11-02", day2), tables.GOLD_RECOMMENDATIONS, root, "2026-11-02")
    popularity = spark.createDataFrame(
        [(1, "t1", 8, 1, "2026-11-02"), (2, "t9", 4, 2, "2026-11-02"), (3, "t3", 2, 3, "2026-11-02")],
        "track_key int, track_id string, listeners long, popularity_rank int, as_of_date string",
    )
    delta_io.overwrite_partition(popularity, tables.GOLD_POPULARITY, root, "2026-11-02")
    tracks = spark.createDataFrame([("t1", "One"), ("t3", "Three")], "track_id string, title string")
    tracks.write.format("delta").save(tables.SILVER_TRACKS.path(root))
    return root


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
    assert columns == ["rank", "title"] and rows == [(1, "One"), (2, "Three")]


def test_cli_recs_and_duckdb_sql(lake, capsys):
    assert cli.main(["recs", "--lake", lake, "--user", "u1", "--k", "1", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ",".join(lookup.RECOMMENDATION_COLUMNS) and out[1].startswith("u1,1,t1,0.9,als,")
    assert cli.main(["recs", "--lake", lake, "--user", "nobody", "--k", "2", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "'nobody' is not in the newest run; the most popular tracks instead" in err
    assert [line.split(",")[1:5] for line in out.splitlines()[1:]] == [
        ["1", "t1", "1.0", "popular"],
        ["2", "t9", "0.5", "popular"],
    ]
    assert cli.main(["recs", "--lake", lake, "--user", "u1", "--k", "0"]) == 2
    assert "--k: must be between 1 and 1000, got 0" in capsys.readouterr().err
    query = "SELECT count(*) AS n FROM gold.recommendations"
    assert cli.main(["sql", "--engine", "duckdb", "--lake", lake, "--format", "json", query]) == 0
    assert capsys.readouterr().out.strip() == '{"n": 6}'
    assert cli.main(["sql", "--engine", "duckdb", "--lake", lake, "SELECT nope FROM gold.recommendations"]) == 2
    assert capsys.readouterr().err.startswith("setlist sql: Binder Error")


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


def test_daily_report_describes_the_newest_run_and_is_replaced_on_rerun(lake):
    from include import report

    day, text = report.build(lake)
    assert day == "2026-11-02" and text.startswith("# Setlist daily report: 2026-11-02")
    assert "| als | m-2026-11-02 | 2 | 4 |" in text  # source, model, users, rows of the newest run only
    assert "## Data quality\n(none)" in text  # no ops tables in this lake yet: said, not an error
    path = report.write(lake)
    assert path == f"{lake}/reports/run_date=2026-11-02/report.md"
    assert Path(path).read_text(encoding="utf-8") == text
    report.write(lake)
    assert Path(path).read_text(encoding="utf-8") == text


def test_failure_callback_records_each_failed_try_once(spark, tmp_path, monkeypatch):
    from include import run_log

    monkeypatch.setenv("SETLIST_LAKE", str(tmp_path))

    def context(try_number: int) -> dict:
        ti = SimpleNamespace(dag_id="setlist_nightly", task_id="build_silver", run_id="r1", try_number=try_number)
        return {"ti": ti, "params": {"run_date": None}, "ds": "2026-11-02", "exception": RuntimeError("boom")}

    run_log.on_failure(context(1))
    run_log.on_failure(context(1))  # the same try reported twice: one row
    run_log.on_failure(context(2))
    rows = delta_io.read(spark, tables.OPS_RUN_LOG, str(tmp_path)).orderBy("try_number").collect()
    assert [(r.run_date, r.task_id, r.try_number, r.state, r.error) for r in rows] == [
        ("2026-11-02", "build_silver", 1, "failed", "RuntimeError: boom"),
        ("2026-11-02", "build_silver", 2, "failed", "RuntimeError: boom"),
    ]
