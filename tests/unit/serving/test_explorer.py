"""The explorer: its frames read through delta-rs/DuckDB, and the Streamlit page driven by ``AppTest``."""

from __future__ import annotations

import datetime as dt

import pytest
from streamlit.testing.v1 import AppTest

from include.cli import main as cli
from include.core import tables
from include.lake import delta_io
from include.serving import explorer
from tests.unit.conftest import record

pytestmark = pytest.mark.unit

PASSWORD = "test-explorer-password"


@pytest.fixture()
def full_lake(spark, lake) -> str:
    """The unit lake plus listening history, daily metrics and the model of the newest run."""
    played = dt.datetime(2026, 11, 2, 8, 0)
    events = [
        (f"e{i}", "u1", t, 1, k, played + dt.timedelta(minutes=i), 60_000, False, i == 0, r, "2026-11-02", 1)
        for i, (t, k, r) in enumerate([("t9", 4, 4.5), ("t2", 2, None)])
    ]
    delta_io.overwrite_partition(
        spark.createDataFrame(events, tables.SILVER_INTERACTIONS.schema),
        tables.SILVER_INTERACTIONS,
        lake,
        "2026-11-02",
    )
    metrics = spark.createDataFrame(
        [("2026-11-02", 2, 1, 2, 120_000, 2, 1, 4.5, {"4.5": 1, "5.0": 0}, 0)],
        "run_date string, events long, unique_users long, unique_tracks long, total_ms_played long,"
        " full_plays long, ratings long, avg_rating double, rating_distribution map<string,long>,"
        " quarantined_rows long",
    )
    delta_io.overwrite_partition(metrics, tables.GOLD_DAILY_METRICS, lake, "2026-11-02")
    model = spark.createDataFrame(
        [
            (
                "m-2026-11-02",
                "2026-11-02",
                "implicit",
                '{"rank": 8}',
                "/m",
                6,
                2,
                4,
                1.5,
                "run-1",
                dt.datetime(2026, 11, 3),
            )
        ],
        "model_version string, run_date string, mode string, params string, path string, training_rows long,"
        " users long, tracks long, fit_seconds double, run_id string, trained_at timestamp",
    )
    model.write.format("delta").save(tables.OPS_MODELS.path(lake))
    return lake


def test_user_view_joins_track_details_and_recent_plays(full_lake):
    view = explorer.user_view("u1", 2, full_lake)
    assert view.known
    got = view.recommendations[["rank", "track_id", "title", "genre", "energy"]].values.tolist()
    assert got == [[1, "t1", "One", "rock", 0.5], [2, "t3", "Three", "rock", 0.5]]
    assert view.recent["track_id"].tolist() == ["t2", "t9"]  # newest play first
    assert view.recent["title"].tolist() == ["Two", "Nine"]


def test_unknown_user_gets_the_popular_list(full_lake):
    view = explorer.user_view("nobody", 2, full_lake)
    assert not view.known and view.recent.empty
    assert view.recommendations[["track_id", "source", "title"]].values.tolist() == [
        ["t1", "popular", "One"],
        ["t9", "popular", "Nine"],
    ]


def test_run_summary_and_charts_read_the_newest_run(full_lake):
    run = explorer.run_summary(full_lake)
    assert (run.run_date, run.users, run.rows, run.tracks_recommended, run.catalog_tracks) == ("2026-11-02", 2, 4, 3, 4)
    assert run.catalog_coverage == 0.75 and run.example_user == "u1"
    assert explorer.rating_distribution(full_lake).values.tolist() == [["4.5", 1], ["5.0", 0]]
    assert explorer.daily_activity(full_lake)["events"].tolist() == [2]
    assert explorer.models(["m-2026-11-02"], full_lake)["training_rows"].tolist() == [6]
    assert explorer.layer_counts(full_lake).empty  # no ops.layer_counts yet: empty, not an error


def test_no_run_yet_is_a_clear_lookup_error(tmp_path):
    with pytest.raises(LookupError, match=r"no gold\.recommendations run under .* yet"):
        explorer.run_summary(str(tmp_path))


def app(lake: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SETLIST_LAKE", lake)
    monkeypatch.setenv("SETLIST_EXPLORER_PASSWORD", PASSWORD)
    return AppTest.from_file(str(cli.EXPLORER_APP), default_timeout=60).run()


def test_page_shows_nothing_before_the_password(full_lake, monkeypatch):
    at = app(full_lake, monkeypatch)
    assert [t.label for t in at.text_input] == ["Password"] and not at.dataframe
    at.text_input(key="password").input("wrong").run()
    assert [e.value for e in at.error] == ["Wrong password."] and not at.dataframe


def test_page_shows_a_users_list_and_the_popular_list_for_an_unknown_user(full_lake, monkeypatch):
    at = app(full_lake, monkeypatch)
    at.text_input(key="password").input(PASSWORD).run()
    assert not at.exception
    assert "Newest run 2026-11-02: 2 users, 4 recommendations" in at.caption[0].value
    assert at.text_input(key="user").value == "u1"
    recs = at.dataframe[0].value
    assert recs["title"].tolist()[:2] == ["One", "Three"] and recs["genre"].tolist()[0] == "rock"
    assert any(s.value == "Top 10 for u1" for s in at.subheader)
    at.text_input(key="user").input("nobody").run()
    assert "'nobody' is not in the run of 2026-11-02" in at.info[0].value
    assert at.dataframe[0].value["source"].tolist() == ["popular", "popular", "popular"]


def test_the_explorer_shows_each_runs_metric_beside_the_baselines(spark, tmp_path):
    from include.serving import explorer

    lake = str(tmp_path)
    assert explorer.model_runs(lake).empty
    record(spark, lake, "a", "2026-11-01", 0.30, True)
    record(spark, lake, "b", "2026-11-02", 0.20, False)
    runs = explorer.model_runs(lake)
    assert list(runs["run_key"]) == ["b", "a"]  # newest first
    first = runs.iloc[1]
    assert (first["metric"], first["model"], first["baseline_config"], first["popularity"]) == (
        "ndcg_at_10",
        0.30,
        0.2,
        0.1,
    )
    assert list(runs["promoted"]) == [False, True]
