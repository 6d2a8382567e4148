"""``setlist evaluate`` end to end on a small MovieLens-format folder: the source mapping, the pipeline's own
bronze/silver/gold jobs (bad rows quarantined, never lost), the metric table as JSON, ops.model_runs and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from include.cli import evaluate
from include.core import tables
from include.lake import delta_io

pytestmark = pytest.mark.integration
USERS, MOVIES = 40, 30


def movielens_folder(root: Path) -> Path:
    """ratings.csv and movies.csv in MovieLens' format: two taste groups (even users like even movies), and
    three bad rows: a rating that is not a number, a movie missing from movies.csv, a broken timestamp."""
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(1, USERS + 1):
        for m in range(1, MOVIES + 1):
            if (u * 7 + m * 3) % 4 == 0:
                continue
            rating = 4.5 if (u + m) % 2 == 0 else 2.0
            lines.append(f"{u},{m},{rating},{964982703 + u * 100 + m}")
    lines += ["3,1,abc,964982703", "3,999,4.0,964982703", "4,2,4.0,yesterday"]
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"]
    movies += [
        f'{m},"Movie {m}, The ({1990 + m})",{"Drama|Romance" if m % 2 else "Comedy"}' for m in range(1, MOVIES + 1)
    ]
    (root / "movies.csv").write_text("\n".join(movies) + "\n")
    return root / "ratings.csv"


def test_evaluate_movielens_explicit_as_json(spark, tmp_path, capsys):
    ratings = movielens_folder(tmp_path)
    lake = str(tmp_path / "lake")
    argv = ["--source", "movielens", "--path", str(ratings), "--mode", "explicit", "--lake", lake]
    model_args = ["--rank", "4", "--max-iter", "5", "--tune-trials", "2"]
    code = evaluate.main([*argv, "--run-date", "2026-11-22", *model_args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)  # stdout is the JSON object alone

    assert result["mode"] == "explicit" and result["split"] == "random 80/20 by pair"
    # Tuned (2 candidates here): the configured parameters first, then the baseline configuration; the chosen one
    # is what the table reports, and every trial is recorded.
    configured = {
        "biases": True,
        "damping": 5.0,
        "max_iter": 5,
        "mode": "explicit",
        "nonnegative": False,
        "rank": 4,
        "reg_param": 0.15,  # unset: the explicit mode's best known
        "seed": 42,
    }
    trials = result["trials"]
    assert trials[0]["params"] == configured and trials[1].get("baseline") is True
    assert len(trials) == 2 and [t["params"] for t in trials if t["chosen"]] == [result["params"]]
    best = min(trials, key=lambda t: t["rmse"])
    assert best["params"] == result["params"] and result["tuned"]
    assert result["choice"].startswith(("tuned: 2 candidates", "the baseline configuration did better"))
    assert result["baseline"]["params"] == {
        "biases": False,
        "max_iter": 10,
        "mode": "explicit",
        "nonnegative": True,
        "rank": 20,
        "reg_param": 0.1,
        "seed": 42,
    }
    for scorer in (result["metrics"], result["baseline"]["metrics"], result["popularity"]):
        assert {"precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "coverage"} <= set(scorer)
    model = result["metrics"]
    assert 0 < model["rmse"] < 2 and 0 < model["mae"] <= model["rmse"]
    assert "rmse" not in result["popularity"]
    # Implicit ALS on the same ratings, scored on the same split, and which model a nightly run would serve.
    ranker = result["ranker"]
    assert ranker["params"]["mode"] == "implicit" and "rmse" not in ranker["metrics"]
    assert ranker["metrics"]["users_evaluated"] == model["users_evaluated"]
    implicit_wins = ranker["metrics"]["ndcg_at_10"] > model["ndcg_at_10"]
    assert result["serving"]["mode"] == ("implicit" if implicit_wins else "explicit")
    # two clean taste groups: the model must rank the held-out liked movies far better than popularity
    assert model["ndcg_at_10"] > result["popularity"]["ndcg_at_10"]
    good_rows = sum(1 for line in ratings.read_text().splitlines()[1:]) - 3
    assert 0.75 * good_rows < result["training_rows"] < 0.85 * good_rows
    assert result["fit_seconds"] > 0 and result["rows_per_second"] > 0

    quarantined = delta_io.read(spark, tables.SILVER_QUARANTINE, lake).where(F.col("source") == "interactions")
    reasons = sorted(r["reasons"] for r in quarantined.collect())
    assert reasons == ["played_at_invalid", "rating_invalid", "unknown_track"]
    counts = delta_io.read(spark, tables.OPS_LAYER_COUNTS, lake).where("source = 'interactions'").first()
    assert (counts["rows_in"], counts["quarantined"]) == (good_rows + 3, 3)
    tracks = delta_io.read(spark, tables.SILVER_TRACKS, lake)
    assert tracks.count() == MOVIES and tracks.where("track_id = '1'").first()["genre"] == "Drama"

    run = delta_io.read(spark, tables.OPS_MODEL_RUNS, lake).where(F.col("run_key") == result["run_key"]).first()
    assert (run["kind"], run["source"], run["promoted"]) == ("evaluate", "movielens", False)
    assert run["metrics"]["rmse"] == pytest.approx(model["rmse"])
    assert json.loads(run["params"]) == result["params"] and json.loads(run["trials"]) == trials
    assert run["served_mode"] == result["serving"]["mode"] and run["served_reason"] == result["serving"]["reason"]
    assert run["ranker_metrics"]["ndcg_at_10"] == pytest.approx(ranker["metrics"]["ndcg_at_10"])
    for plot in result["plots"]:
        assert Path(plot).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_names_a_bad_argument(tmp_path, capsys):
    code = evaluate.main(["--source", "lastfm", "--path", str(tmp_path / "x.csv"), "--mode", "implicit"])
    assert code == 2
    assert "--source: must be one of movielens, movielens-100k, play-counts or a mapping .json file, got 'lastfm'" in (
        capsys.readouterr().err
    )


def test_evaluate_refuses_a_bad_number_of_splits(tmp_path, capsys):
    code = evaluate.main(["--source", "movielens", "--path", "x.csv", "--mode", "implicit", "--splits", "0"])
    assert code == 2
    assert "Invalid value for '--splits': must be a whole number from 1 to 20, got '0'" in capsys.readouterr().err


def test_a_play_count_file_stays_one_row_per_count_and_repeated_splits_report_their_mean(spark, tmp_path, capsys):
    from include.cli import generate

    folder = tmp_path / "counts"
    written = generate.generate_play_counts(generate.PlayCountSpec(str(folder), rows=2_000, users=200, artists=400))
    with open(folder / "plays.tsv", "a", encoding="utf-8") as fh:
        fh.write("user_000001\ttrk_0000001\tlots\n")  # a bad count: quarantined with its text
    capsys.readouterr()  # the generator's log line
    lake = str(tmp_path / "lake")
    argv = ["--source", "play-counts", "--path", str(folder / "plays.tsv"), "--mode", "implicit", "--lake", lake]
    argv += ["--run-date", "2026-11-22", "--tune-trials", "0", "--rank", "4", "--max-iter", "5", "--splits", "2"]
    code = evaluate.main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)

    silver = delta_io.read(spark, tables.SILVER_INTERACTIONS, lake)
    totals = silver.agg(F.count("*").alias("rows"), F.sum("plays").alias("plays")).first()
    assert (totals["rows"], totals["plays"]) == (written["rows"], written["plays"])  # no row per play
    q = delta_io.read(spark, tables.SILVER_QUARANTINE, lake).where(F.col("source") == "interactions").first()
    assert q["reasons"] == "plays_invalid" and '"plays":"lots"' in q["raw"]
    affinity = delta_io.read(spark, tables.GOLD_AFFINITY, lake)
    assert affinity.agg(F.sum("full_plays")).first()[0] == written["plays"]
    assert result["metrics"]["ndcg_at_10"] > 0 and result["training_rows"] < written["rows"]

    # Untuned, on two splits: every figure is the mean of the splits', with its standard deviation beside it.
    assert not result["tuned"] and result["trials"] == [] and result["choice"] == ""
    assert result["params"]["rank"] == 4 and result["params"]["alpha"] == 5.0  # the rest: the mode's best known
    assert result["split"] == "per-user 20% holdout, repeated on 2 splits (seeds 42, 1042)"
    assert [s["split_seed"] for s in result["splits"]] == [42, 1042]
    per_split = [s["model"] for s in result["splits"]]
    assert result["metrics"]["ndcg_at_10"] == pytest.approx(sum(per_split) / 2)
    assert result["metrics"]["ndcg_at_10_sd"] == pytest.approx(abs(per_split[0] - per_split[1]) / 2**0.5)
    popular = [s["popularity"] for s in result["splits"]]
    assert result["popularity"]["ndcg_at_10"] == pytest.approx(sum(popular) / 2)
    assert result["run_key"].endswith("-x2")
    run = delta_io.read(spark, tables.OPS_MODEL_RUNS, lake).where(F.col("run_key") == result["run_key"]).first()
    assert run["metrics"]["ndcg_at_10_sd"] == pytest.approx(result["metrics"]["ndcg_at_10_sd"])
