"""Splits, metrics, baselines, biases and the promotion rule on tiny inline data."""

from __future__ import annotations

import math
import threading
import time

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include.core import config
from include.models import als, evaluation, model_runs, tuned_settings
from include.models.evaluation import Report

pytestmark = pytest.mark.unit


PAIRS = "user_key int, track_key int, rating float"


def pairs(spark, users=40, tracks=25):
    rows = [(u, t, float(1 + (u * 7 + t * 3) % 5)) for u in range(users) for t in range(tracks) if (u + t) % 3]
    return spark.createDataFrame(rows, PAIRS)


def test_random_split_is_deterministic_whatever_the_partitioning(spark):
    data = pairs(spark)
    train, test = evaluation.split_random(data, seed=7)
    train2, test2 = evaluation.split_random(data.repartition(7, "track_key"), seed=7)
    assertDataFrameEqual(test, test2)
    assertDataFrameEqual(train, train2)
    n, n_test = data.count(), test.count()
    assert train.count() + n_test == n and train.join(test, ["user_key", "track_key"]).count() == 0
    assert 0.15 * n < n_test < 0.25 * n
    other = evaluation.split_random(data, seed=8)[1]
    assert {tuple(r) for r in other.collect()} != {tuple(r) for r in test.collect()}


def test_per_user_split_holds_out_a_fifth_of_each_user(spark):
    data = pairs(spark)
    train, test = evaluation.split_per_user(data, seed=3)
    _, test2 = evaluation.split_per_user(data.repartition(5), seed=3)
    assertDataFrameEqual(test, test2)
    sizes = {r.user_key: r["count"] for r in data.groupBy("user_key").count().collect()}
    held = {r.user_key: r["count"] for r in test.groupBy("user_key").count().collect()}
    assert held == {u: n // 5 for u, n in sizes.items() if n // 5}
    assert train.count() + test.count() == data.count()


def test_rating_metrics_by_hand(spark):
    preds = spark.createDataFrame(
        [(4.0, 3.0), (2.0, 4.0), (5.0, 5.0), (3.0, float("nan"))], "rating double, prediction double"
    )
    m = evaluation.rating_metrics(preds)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 4 + 0) / 3))
    assert m["mae"] == pytest.approx(1.0)
    assert m["scored"] == 3


def test_ranking_metrics_by_hand(spark):
    # user 1: list [10, 11, 12], relevant {10, 12}; user 2: relevant {20} and no list at all (scores 0).
    recs = spark.createDataFrame([(1, 12, 3), (1, 10, 1), (1, 11, 2)], "user_key int, track_key int, rank int")
    relevant = spark.createDataFrame([(1, 10), (1, 12), (2, 20)], "user_key int, track_key int")
    m = evaluation.ranking_metrics(recs, relevant, k=3)
    dcg, idcg = 1 + 1 / math.log2(4), 1 + 1 / math.log2(3)
    assert m["precision_at_3"] == pytest.approx((2 / 3) / 2)
    assert m["recall_at_3"] == pytest.approx(1.0 / 2)
    assert m["ndcg_at_3"] == pytest.approx((dcg / idcg) / 2)
    assert m["map_at_3"] == pytest.approx(((1 + 2 / 3) / 2) / 2)
    assert m["users_evaluated"] == 2


def _factors(spark, users: dict[int, list[float]], items: dict[int, list[float]]) -> als.Factors:
    schema = "id int, features array<float>"
    return als.Factors(
        spark.createDataFrame(list(users.items()), schema),
        spark.createDataFrame(list(items.items()), schema),
        rank=len(next(iter(users.values()))),
        fitted=None,  # type: ignore[arg-type]
    )


def test_model_recs_drop_seen_tracks_and_break_ties_by_track(spark):
    # user 1 scores tracks 5..8 as 0.9, 0.5, 0.5, 0.1 and has played 5; user 2 has no factors.
    model = _factors(spark, {1: [1.0]}, {5: [0.9], 6: [0.5], 7: [0.5], 8: [0.1]})
    users = spark.createDataFrame([(1,), (2,)], "user_key int")
    seen = spark.createDataFrame([(1, 5)], "user_key int, track_key int")
    got = evaluation.model_recs(model, users, seen, k=2).select("user_key", "track_key", "rank")
    assertDataFrameEqual(got, [(1, 6, 1), (1, 7, 2)])


def test_popularity_recs_count_positive_training_pairs(spark):
    train = spark.createDataFrame([(1, 10, 5.0), (2, 10, 4.0), (3, 11, 5.0), (1, 12, 2.0), (2, 12, 1.0)], PAIRS)
    users = spark.createDataFrame([(9,), (3,)], "user_key int")
    got = evaluation.popularity_recs(train, users, F.col("rating") >= 4, k=5).select("user_key", "track_key", "score")
    # user 3 has a training pair with 11, so only 10 is left for it; 12 has no positive pair at all
    assertDataFrameEqual(got, [(9, 10, 2.0), (9, 11, 1.0), (3, 10, 2.0)])


def test_params_json_names_only_what_applies_to_the_mode():
    assert "alpha" not in als.AlsParams(mode="explicit").as_dict()
    assert "biases" not in als.AlsParams(mode="implicit").as_dict()
    assert als.AlsParams(rank=8).digest() != als.AlsParams(rank=9).digest()
    assert "damping" not in als.AlsParams(mode="explicit", biases=False).as_dict()
    assert (
        als.AlsParams(mode="explicit", biases=True, damping=10).digest()
        != als.AlsParams(mode="explicit", biases=True).digest()
    )
    params = als.AlsParams(mode="explicit", biases=True)
    assert als.AlsParams.from_json(params.to_json()) == params


def test_tuning_tries_the_configuration_then_the_baseline_then_the_best_known():
    params = als.AlsParams(mode="explicit", biases=True, rank=40)
    grid = evaluation.first_candidates(params)
    assert grid == [params, evaluation.baseline_for("explicit", 42), evaluation.best_known("explicit", 42)]
    best = evaluation.best_known("explicit", 42)
    assert evaluation.first_candidates(best) == [best, evaluation.baseline_for("explicit", 42)]  # no repeats


def test_side_by_side_keeps_the_order_the_limit_and_the_deadline(spark):
    running, peak, lock = [0], [0], threading.Lock()

    def work(item: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05 * (4 - item))  # the first items finish last
        with lock:
            running[0] -= 1
        return spark.range(item).count() * 10  # the caller's session, in another thread

    assert als.side_by_side(work, [0, 1, 2, 3], workers=2) == [0, 10, 20, 30]
    assert peak[0] == 2
    assert als.side_by_side(work, [1, 2, 3], workers=3, deadline=time.monotonic()) == [10]  # the first starts
    assert als.side_by_side(work, [], workers=2) == []


def test_fits_at_once_follows_the_input_size():
    settings = config.Settings(lake="/tmp/lake", codegen_min_rows=1000)
    assert als.fits_at_once(settings, 999) == als.SMALL_FITS_AT_ONCE
    assert als.fits_at_once(settings, 1000) == 1
    assert als.fits_at_once(settings.with_overrides(als_fits_at_once=2), 10**9) == 2


def report(mode: str, value: float) -> Report:
    name = "rmse" if mode == "explicit" else "ndcg_at_10"
    return Report(mode, 10, als.AlsParams(mode=mode), {name: value}, {}, {}, 100, 2.0, [])


@pytest.mark.parametrize(
    ("mode", "value", "champion", "promoted"),
    [
        ("implicit", 0.30, None, True),  # the first model is always promoted
        ("implicit", 0.295, 0.30, True),  # within 2%
        ("implicit", 0.29, 0.30, False),  # more than 2% lower
        ("explicit", 0.86, 0.85, True),  # RMSE: lower is better; within 2%
        ("explicit", 0.90, 0.85, False),
        ("explicit", float("nan"), 0.85, False),
    ],
)
def test_promotion_rule(mode, value, champion, promoted):
    current = None if champion is None else model_runs.Champion("als-old", champion, "{}")
    decision = model_runs.decide(report(mode, value), current, tolerance=0.02)
    assert decision.promoted is promoted
    if not promoted:
        assert "als-old" in decision.reason


def ranked(explicit_ndcg: float, implicit_ndcg: float | None) -> Report:
    ranker = {} if implicit_ndcg is None else {"ndcg_at_10": implicit_ndcg}
    metrics = {"rmse": 0.84, "ndcg_at_10": explicit_ndcg}
    return Report("explicit", 10, als.AlsParams(mode="explicit"), metrics, {}, {}, 100, 2.0, [], ranker=ranker)


@pytest.mark.parametrize(
    ("explicit", "implicit", "serve_model", "served"),
    [
        (0.06, 0.29, "auto", "implicit"),  # the implicit model ranks better: it serves
        (0.30, 0.29, "auto", "explicit"),
        (0.29, 0.29, "auto", "explicit"),  # a tie keeps the rating model
        (0.30, 0.29, "implicit", "implicit"),  # forced
        (0.06, None, "explicit", "explicit"),  # not compared at all
    ],
)
def test_the_model_that_ranks_better_serves_and_the_run_says_why(explicit, implicit, serve_model, served):
    mode, why = ranked(explicit, implicit).serving(serve_model)
    assert mode == served
    if implicit is not None:
        assert f"{implicit:.4f}" in why and f"{explicit:.4f}" in why
    assert Report("implicit", 10, als.AlsParams(), {}, {}, {}, 1, 1.0, []).serving("explicit")[0] == "implicit"


def test_ratings_become_preferences_around_the_neutral_rating(spark):
    data = spark.createDataFrame([(1, 1, 5.0), (1, 2, 3.0), (1, 3, 1.0)], PAIRS)
    got = {r.track_key: r.rating for r in evaluation.preferences(data).collect()}
    assert got == {1: 2.0, 2: 0.0, 3: -2.0}  # a liking, nothing, evidence against


def test_settings_given_win_over_tuned_ones_which_win_over_the_best_known():
    tuned = als.AlsParams(mode="implicit", rank=64, max_iter=12, reg_param=0.05, alpha=20.0)
    settings = config.load_settings(env={}, lake="/tmp/lake")
    assert als.AlsParams.of(settings, tuned) == tuned and als.AlsParams.of(settings) == evaluation.best_known(
        "implicit", 42
    )
    assert settings.als_source("implicit-2026-11-02") == "tuned implicit-2026-11-02 settings"
    ranked = settings.with_overrides(rank=4)
    assert als.AlsParams.of(ranked, tuned) == tuned.replace(rank=4)
    assert ranked.als_source("implicit-2026-11-02") == "set: rank; tuned implicit-2026-11-02 for the rest"
    # settings tuned for another mode do not apply
    explicit = settings.with_overrides(als_mode="explicit")
    assert als.AlsParams.of(explicit, tuned) == evaluation.best_known("explicit", 42)


@pytest.mark.parametrize(
    ("mode", "value", "tuned", "due"),
    [
        ("implicit", 0.25, 0.30, True),  # 17% below the tuned settings' validation NDCG
        ("implicit", 0.28, 0.30, False),  # within 10%
        ("explicit", 0.95, 0.85, True),  # RMSE: lower is better
        ("explicit", 0.90, 0.85, False),
    ],
)
def test_tuning_is_due_when_the_nightly_falls_clearly_below_the_tuned_metric(mode, value, tuned, due):
    name = "rmse" if mode == "explicit" else "ndcg_at_10"
    found = tuned_settings.Tuned(f"{mode}-2026-11-02", als.AlsParams(mode=mode), name, tuned)
    line = model_runs.tuning_due(report(mode, value), found, 0.1)
    assert bool(line) == due
    if due:
        assert line.startswith(f"tuning due: {name}={value:.4f} is worse than {tuned:.4f}, tuned settings {mode}-")
    assert model_runs.tuning_due(report(mode, value), found, 0.0) == ""  # 0: never
    assert model_runs.tuning_due(report(mode, value), None, 0.1) == ""  # nothing tuned yet


def test_a_tuning_run_that_kept_the_baseline_configuration_gives_it_whole():
    baseline = evaluation.baseline_for("implicit", 42)
    settings = config.load_settings(env={}, lake="/tmp/lake", seed=7)
    assert als.AlsParams.of(settings, baseline) == baseline.replace(seed=7)  # nonnegative too
