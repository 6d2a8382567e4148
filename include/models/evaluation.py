"""Offline evaluation of recommenders: deterministic splits, rating and ranking metrics, baselines.

Reads and writes nothing: pure functions of DataFrames of ``(user_key, track_key, rating)`` rows.

- Splits hash each pair with a seed, so the same data gives the same split however it is partitioned.
- Ranking metrics are Spark's ``RankingEvaluator`` at K over the users with at least one relevant held-out
  track; the tracks a user has in the training split are never ranked (they are "seen").
- Relevant: a held-out pair whose rating is at least :data:`POSITIVE_RATING` (explicit), or a held-out pair
  with a positive strength (implicit: at least one full play).
- Fits that do not depend on each other (tuning's candidates; the model, the baseline configuration and the
  second model on the test split) run side by side, ``workers`` at a time (:func:`als.fits_at_once`): a
  small fit mostly waits on Spark's scheduling of its many short stages, so two or three share the cores.
  Each fit is seeded, so the metrics are the same whatever the number of workers.
- On explicit data a second model can rank beside the rating model: implicit ALS fitted on the same training
  ratings read as preferences (:func:`preferences`), scored on the same split; :meth:`Report.serving` says
  which of the two writes ``gold.recommendations`` and why.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from include.core.config import ALS_DEFAULTS, Settings
from include.models import search, topk
from include.models.als import BASELINE, RATING, TRACK, USER, AlsParams, Factors, FitError, Fitter, side_by_side

TEST_PERCENT = 20
POSITIVE_RATING = 4.0
# Explicit ratings as implicit preferences: above it a liking, below it evidence against (BENCHMARKS.md).
NEUTRAL_RATING = 3.0
RANKER_ALPHA = 3.0
RankingMetric = Literal["precisionAtK", "recallAtK", "ndcgAtK", "meanAveragePrecisionAtK"]
RANKING: dict[str, RankingMetric] = {
    "precision": "precisionAtK",
    "recall": "recallAtK",
    "ndcg": "ndcgAtK",
    "map": "meanAveragePrecisionAtK",
}


def _hash(seed: int) -> Column:
    return F.xxhash64(F.lit(seed), F.col(USER), F.col(TRACK))


def split_random(data: DataFrame, seed: int, test_percent: int = TEST_PERCENT) -> tuple[DataFrame, DataFrame]:
    """(train, test): a pair is held out when its seeded hash falls in the lowest ``test_percent`` of 100."""
    test = F.pmod(_hash(seed), F.lit(100)) < test_percent
    return data.where(~test), data.where(test)


def split_per_user(data: DataFrame, seed: int, test_percent: int = TEST_PERCENT) -> tuple[DataFrame, DataFrame]:
    """(train, test): each user's ``floor(test_percent% of their pairs)`` pairs with the highest seeded hash
    are held out, so every user with five or more pairs is evaluated and keeps 80% for training."""
    order = Window.partitionBy(USER).orderBy(_hash(seed), TRACK)
    count = F.count(F.lit(1)).over(Window.partitionBy(USER))
    marked = data.withColumn("_n", F.row_number().over(order)).withColumn(
        "_test", F.col("_n") > count - F.floor(count * test_percent / 100)
    )
    return marked.where(~F.col("_test")).drop("_n", "_test"), marked.where("_test").drop("_n", "_test")


def rating_metrics(predictions: DataFrame) -> dict[str, float]:
    """RMSE and MAE of ``prediction`` against ``rating`` (rows the model could not score are dropped)."""
    err = F.col("prediction") - F.col(RATING)
    row = (
        predictions.where(F.col("prediction").isNotNull() & ~F.isnan("prediction"))
        .agg(F.sqrt(F.avg(err * err)).alias("rmse"), F.avg(F.abs(err)).alias("mae"), F.count("*").alias("n"))
        .first()
    )
    assert row is not None
    return {"rmse": float(row["rmse"] or math.nan), "mae": float(row["mae"] or math.nan), "scored": float(row["n"])}


def ranking_metrics(
    recs: DataFrame, relevant: DataFrame, k: int, names: Sequence[str] = tuple(RANKING)
) -> dict[str, float]:
    """Precision, recall, NDCG and MAP (or only ``names`` of them) at ``k`` of ``recs`` (user_key, track_key,
    rank) against ``relevant`` (user_key, track_key), averaged over the users with a relevant track; a user
    without recs scores 0."""
    truth = relevant.groupBy(USER).agg(F.collect_set(F.col(TRACK).cast("double")).alias("label"))
    lists = recs.groupBy(USER).agg(
        F.transform(F.array_sort(F.collect_list(F.struct("rank", TRACK))), lambda s: s[TRACK].cast("double")).alias(
            "prediction"
        )
    )
    frame = (
        truth.join(lists, USER, "left")
        .select(F.coalesce("prediction", F.array().cast("array<double>")).alias("prediction"), "label")
        .cache()
    )
    users = frame.count()
    out = {f"{name}_at_{k}": 0.0 for name in names}
    if users:
        for name in names:
            metric = RANKING[name]
            evaluator = RankingEvaluator(predictionCol="prediction", labelCol="label", metricName=metric, k=k)
            out[f"{name}_at_{k}"] = float(evaluator.evaluate(frame))
    out["users_evaluated"] = float(users)
    frame.unpersist()
    return out


def coverage(recs: DataFrame, catalog_size: int) -> float:
    """Share of the catalog that appears in at least one user's list."""
    return recs.select(TRACK).distinct().count() / catalog_size if catalog_size else 0.0


def model_recs(model: Factors, users: DataFrame, seen: DataFrame, k: int) -> DataFrame:
    """Each user's ``k`` best tracks by the model, none in ``seen`` (ties: the smaller track key): exact, by
    blocked matrix products (:mod:`include.models.topk`); (user_key, track_key, rank, score)."""
    ranker = topk.Ranker(k, topk.Catalog(*topk.collect_matrix(model.items)))
    return topk.rank(topk.user_rows(users, seen, model.users), ranker).drop("source")


def popularity_recs(train: DataFrame, users: DataFrame, positive: Column, k: int) -> DataFrame:
    """The popularity baseline: each user's ``k`` tracks with the most positive training pairs (ties: the
    smaller key) that the user has no training pair with; (user_key, track_key, rank, score)."""
    counts = train.where(positive).groupBy(TRACK).agg(F.count("*").cast("double").alias("n")).toArrow()
    popular = topk.Popular.ordered(
        counts.column(TRACK).to_numpy(zero_copy_only=False).astype(np.int64),
        counts.column("n").to_numpy(zero_copy_only=False),
    )
    return topk.rank(topk.user_rows(users, train, None), topk.Ranker(k, popular=popular)).drop("source")


@dataclass(frozen=True)
class Split:
    """A training and a test split of one dataset, and what counts as relevant in it."""

    train: DataFrame
    test: DataFrame
    positive: Column  # over ``rating``: the pair is relevant
    seed: int = 0  # the split's seed: a validation split carved from ``train`` uses the next one

    @property
    def relevant(self) -> DataFrame:
        return self.test.where(self.positive)


def split_for(mode: str, data: DataFrame, seed: int) -> Split:
    """Explicit: random 80/20 by pair. Implicit: per-user holdout of 20% of each user's positive pairs (a
    positive strength); everything else, skipped-only pairs included, stays in training (and counts as seen)."""
    if mode == "explicit":
        train, test = split_random(data, seed)
        return Split(train, test, F.col(RATING) >= POSITIVE_RATING, seed)
    positive = F.col(RATING) > 0
    _, test = split_per_user(data.where(positive), seed)
    train = data.join(test.select(USER, TRACK), [USER, TRACK], "left_anti")
    return Split(train, test, positive, seed)


def evaluate_recs(split: Split, recs: DataFrame, k: int, catalog_size: int) -> dict[str, float]:
    """Ranking metrics and coverage of (user_key, track_key, rank) lists on ``split``."""
    recs = recs.cache()
    metrics = ranking_metrics(recs, split.relevant, k)
    metrics["coverage"] = coverage(recs, catalog_size)
    recs.unpersist()
    return metrics


def _split_recs(model: Factors, split: Split, k: int) -> DataFrame:
    """The model's top ``k`` for each user with a relevant held-out track, none seen in training."""
    return model_recs(model, split.relevant.select(USER).distinct(), split.train, k)


def evaluate_model(model: Factors, split: Split, mode: str, k: int, catalog_size: int) -> dict[str, float]:
    """Every metric of a model fitted on ``split.train``: ranking metrics, and RMSE/MAE in explicit mode."""
    metrics = evaluate_recs(split, _split_recs(model, split, k), k, catalog_size)
    if mode == "explicit":
        metrics.update(rating_metrics(model.predict(split.test)))
    return metrics


def primary_value(model: Factors, split: Split, mode: str, k: int) -> float:
    """The mode's primary metric alone (what tuning compares): RMSE, or NDCG at ``k``."""
    name, _ = primary_metric(mode, k)
    if mode == "explicit":
        return rating_metrics(model.predict(split.test))[name]
    only = (name.removesuffix(f"_at_{k}"),)
    return ranking_metrics(_split_recs(model, split, k), split.relevant, k, names=only)[name]


def evaluate_popularity(split: Split, k: int, catalog_size: int) -> dict[str, float]:
    users = split.relevant.select(USER).distinct()
    return evaluate_recs(split, popularity_recs(split.train, users, split.positive, k), k, catalog_size)


# The metric each mode is judged by, and whether higher is better.
PRIMARY: Mapping[str, tuple[str, bool]] = {"explicit": ("rmse", False), "implicit": ("ndcg_at_{k}", True)}


def primary_metric(mode: str, k: int) -> tuple[str, bool]:
    name, higher = PRIMARY[mode]
    return name.format(k=k), higher


def no_worse(candidate: float, champion: float, higher_is_better: bool, tolerance: float) -> bool:
    """The promotion rule: the candidate may be worse than the champion by at most ``tolerance`` (relative)."""
    if math.isnan(champion):
        return True
    if higher_is_better:
        return candidate >= champion * (1 - tolerance)
    return candidate <= champion * (1 + tolerance)


def baseline_for(mode: str, seed: int) -> AlsParams:
    """The untuned configuration beside every model: rank 20, 10 iterations, regParam 0.1 (implicit: Spark's
    default alpha of 1)."""
    return BASELINE.replace(mode=mode, seed=seed, alpha=1.0)


def best_known(mode: str, seed: int) -> AlsParams:
    """The mode's best settings measured on MovieLens (``ALS_DEFAULTS``; explicit with biases)."""
    values = ALS_DEFAULTS[mode]
    return AlsParams(
        mode=mode,
        rank=int(values["rank"]),
        max_iter=int(values["max_iter"]),
        reg_param=values["reg_param"],
        alpha=values["alpha"],
        biases=mode == "explicit",
        seed=seed,
    )


def preferences(ratings: DataFrame) -> DataFrame:
    """Explicit ratings as implicit ALS input: ``rating - NEUTRAL_RATING``. Spark's implicit ALS reads a positive
    value as a liking with confidence ``1 + alpha * value`` and a negative one as that much evidence against."""
    return ratings.withColumn(RATING, (F.col(RATING) - NEUTRAL_RATING).cast("float"))


def scores_ranker(serve_model: str) -> bool:
    """Whether an evaluation of explicit ratings also scores implicit ALS on them (:attr:`Report.ranker`),
    which :meth:`Report.serving` needs to choose: always, unless ``serve_model`` pins the explicit model."""
    return serve_model != "explicit"


def ranker_for(params: AlsParams) -> AlsParams:
    """The implicit model fitted on an explicit run's :func:`preferences`: the implicit mode's best known
    settings with alpha :data:`RANKER_ALPHA` (ratings reach 2 above neutral, log-plays rarely more)."""
    return best_known("implicit", params.seed).replace(alpha=RANKER_ALPHA)


def first_candidates(params: AlsParams) -> list[AlsParams]:
    """The candidates tuning tries before its search proposes any, in order, without repeats: the configured
    ``params``, the baseline configuration (so tuning never ends worse than it on the validation split) and the
    mode's best known settings."""
    return list(dict.fromkeys([params, baseline_for(params.mode, params.seed), best_known(params.mode, params.seed)]))


@dataclass(frozen=True)
class Budget:
    """What tuning may spend, at most ``trials`` candidates and ``seconds`` (the first candidate always runs), and
    the model settings it must not change (``held``: the ones a user set)."""

    trials: int = 0
    seconds: float = 0.0
    held: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Budget:
        """The settings' budget (``tune_trials``, ``tune_seconds``), holding the model settings they set."""
        return cls(settings.tune_trials, settings.tune_seconds, settings.als_given())

    @property
    def on(self) -> bool:
        return self.trials > 0 and self.seconds > 0


NO_TUNING = Budget()


@dataclass(frozen=True)
class Report:
    """What one evaluation found: the model's metrics beside the baseline configuration's and popularity's."""

    mode: str
    k: int
    params: AlsParams
    metrics: dict[str, float]
    baseline: dict[str, float]
    popularity: dict[str, float]
    training_rows: int
    fit_seconds: float
    trials: list[dict[str, Any]]
    splits: list[dict[str, Any]] = field(default_factory=list)  # repeated holdout: each split's seed and results
    choice: str = ""  # what tuning chose and why (empty: not tuned)
    ranker: dict[str, float] = field(default_factory=dict)  # explicit: the implicit model's ranking metrics

    @property
    def primary(self) -> tuple[str, float, bool]:
        name, higher = primary_metric(self.mode, self.k)
        return name, self.metrics.get(name, math.nan), higher

    @property
    def ranker_params(self) -> AlsParams:
        return ranker_for(self.params)

    def serving(self, serve_model: str = "auto") -> tuple[str, str]:
        """(mode, why): which model writes ``gold.recommendations``. Implicit runs serve their model. Explicit
        runs serve the rating model unless ``serve_model`` is ``implicit``, or ``auto`` and the implicit model
        on the same ratings ranks better on the same split (NDCG at K)."""
        if self.mode == "implicit":
            return "implicit", "an implicit run serves its own model"
        if not self.ranker:
            return "explicit", f"serve_model={serve_model}: the explicit model writes the lists"
        name, _ = primary_metric("implicit", self.k)  # the ranking metric implicit runs are judged by
        ours, theirs = self.metrics.get(name, math.nan), self.ranker.get(name, math.nan)
        compared = f"{name} {theirs:.4f} for implicit ALS on the ratings against {ours:.4f} for the explicit model"
        if serve_model == "implicit":
            return "implicit", f"serve_model=implicit ({compared})"
        if theirs > ours:
            return "implicit", f"the implicit model ranks better on the same split: {compared}"
        return "explicit", f"the explicit model ranks at least as well on the same split: {compared}"

    @property
    def rows_per_second(self) -> float:
        return self.training_rows / self.fit_seconds if self.fit_seconds else 0.0


def tune(
    split: Split, params: AlsParams, budget: Budget, k: int, fitter: Fitter, workers: int = 1
) -> tuple[AlsParams, list[dict[str, Any]], str]:
    """The best candidate on a validation split carved from ``split.train`` (never the test split), within
    ``budget``, ``workers`` candidates at a time: :func:`first_candidates`'s, then the TPE search's
    (:func:`include.models.search.run`); (parameters, every trial, a line saying what was chosen and why). Ties
    go to the earlier candidate."""
    inner = split_for(params.mode, split.train, split.seed + 1)
    name, higher = primary_metric(params.mode, k)
    baseline = baseline_for(params.mode, params.seed)
    found = search.run(
        params,
        first_candidates(params),
        lambda candidate: primary_value(fitter(inner.train, candidate), inner, params.mode, k),
        higher,
        budget.trials,
        budget.seconds,
        workers,
        held=budget.held,
    )
    best, best_value, baseline_value = params, math.nan, math.nan
    trials: list[dict[str, Any]] = []
    for number, trial in enumerate(found):
        value = None if trial.state != "complete" else trial.value
        record = {
            "split_seed": split.seed, "trial": number, "params": trial.params.as_dict(), name: value,
            "seconds": trial.seconds, "sampler": trial.sampler, "state": trial.state,
        }  # fmt: skip
        if trial.rung is not None:
            record["rung"] = trial.rung
        if trial.failed:
            record["failed"] = trial.failed
        if trial.params == baseline:
            record["baseline"] = True
            baseline_value = trial.value
        trials.append(record)
        if value is not None and (math.isnan(best_value) or (value > best_value if higher else value < best_value)):
            best, best_value = trial.params, value
    unfit = [t for t in trials if t.get("failed")]
    if len(unfit) == len(trials):
        raise FitError(f"no tuning candidate could be fitted: {unfit[0]['failed']}")
    for record in trials:
        record["chosen"] = record["params"] == best.as_dict()
    tuned = [t[name] for t in trials if not t.get("baseline") and t[name] is not None]
    if best == baseline and tuned:
        top = max(tuned) if higher else min(tuned)
        note = (
            f"the baseline configuration did better on the validation split ({name} {baseline_value:.4f} against"
            f" {top:.4f} for the best of {len(tuned)} tuned candidates): fell back to it"
        )
    else:
        pruned = sum(t["state"] == "pruned" for t in trials)
        note = f"tuned: {len(trials)} candidates on the validation split, best {name} {best_value:.4f}"
        note += f" ({pruned} pruned early)" if pruned else ""
    if unfit:
        note += f"; {len(unfit)} could not be fitted ({unfit[0]['failed']})"
    return best, trials, note


# Repeated holdout: split i uses seed + i * SPLIT_SEED_STEP, far from any split's validation seed (+1).
SPLIT_SEED_STEP = 1000
MAX_SPLITS = 20


def evaluate(
    data: DataFrame,
    params: AlsParams,
    k: int,
    fitter: Fitter,
    budget: Budget = NO_TUNING,
    with_baseline: bool = True,
    splits: int = 1,
    ranker: bool = False,
    workers: int = 1,
) -> Report:
    """Split ``data`` for the mode, tune on the training split within ``budget``, fit and score the model, the
    baseline configuration and popularity on the same test split; ``workers`` fits at a time.

    With ``splits`` > 1 this is a repeated holdout: the whole evaluation (tuning included, ``budget`` each)
    runs on ``splits`` independent splits, the metrics are their means with ``<metric>_sd`` (sample standard
    deviation) beside them, and :attr:`Report.splits` holds each split's primary values.

    With ``ranker`` (explicit mode), implicit ALS on the same training ratings (:func:`ranker_for`) is scored
    on the same test split beside the model, in :attr:`Report.ranker`.
    """
    if not 1 <= splits <= MAX_SPLITS:
        raise ValueError(f"splits must be from 1 to {MAX_SPLITS}, got {splits}")
    catalog_size = data.select(TRACK).distinct().count()
    seeds = [params.seed + i * SPLIT_SEED_STEP for i in range(splits)]
    ranker = ranker and params.mode == "explicit"
    reports = [
        evaluate_split(data, params, k, fitter, budget, with_baseline, catalog_size, s, ranker, workers) for s in seeds
    ]
    if splits == 1:
        return reports[0]
    first = reports[0]
    name, _ = primary_metric(first.mode, k)
    return Report(
        first.mode,
        k,
        first.params,
        mean_metrics([r.metrics for r in reports]),
        mean_metrics([r.baseline for r in reports]) if with_baseline else {},
        mean_metrics([r.popularity for r in reports]),
        round(statistics.fmean(r.training_rows for r in reports)),
        statistics.fmean(r.fit_seconds for r in reports),
        [t for r in reports for t in r.trials],
        [
            {
                "split_seed": seed,
                "params": r.params.as_dict(),
                "model": r.metrics.get(name, math.nan),
                "baseline": r.baseline.get(name, math.nan),
                "popularity": r.popularity.get(name, math.nan),
                "choice": r.choice,
            }
            for seed, r in zip(seeds, reports, strict=True)
        ],
        _choices(reports, baseline_for(first.mode, params.seed)),
        mean_metrics([r.ranker for r in reports]) if ranker else {},
    )


def _choices(reports: Sequence[Report], baseline: AlsParams) -> str:
    """What tuning chose over repeated splits, in one line (empty: not tuned)."""
    if not any(r.choice for r in reports):
        return ""
    fell_back = sum(r.params == baseline for r in reports)
    line = f"tuned on each of {len(reports)} splits"
    return line + (f"; fell back to the baseline configuration on {fell_back}" if fell_back else "")


def mean_metrics(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each metric's mean over ``runs`` and, as ``<metric>_sd``, its sample standard deviation."""
    out: dict[str, float] = {}
    for name in runs[0]:
        values = [r[name] for r in runs]
        out[name] = statistics.fmean(values)
        out[f"{name}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def evaluate_split(
    data: DataFrame,
    params: AlsParams,
    k: int,
    fitter: Fitter,
    budget: Budget,
    with_baseline: bool,
    catalog_size: int,
    seed: int,
    ranker: bool = False,
    workers: int = 1,
) -> Report:
    """One holdout: the split of ``data`` with ``seed``; the model's parameters keep their own seed."""
    split = split_for(params.mode, data, seed)
    split = Split(split.train.cache(), split.test.cache(), split.positive, seed)
    rows = split.train.count()
    trials: list[dict[str, Any]] = []
    choice = ""
    if budget.on:
        params, trials, choice = tune(split, params, budget, k, fitter, workers)
    chosen = params

    def model() -> tuple[dict[str, float], float]:
        started = time.monotonic()
        fitted = fitter(split.train, chosen)
        fitted.users.count()  # fitting is lazy in part: time it whole
        fit_seconds = time.monotonic() - started
        return evaluate_model(fitted, split, chosen.mode, k, catalog_size), fit_seconds

    def baseline() -> dict[str, float]:
        return evaluate_model(
            fitter(split.train, baseline_for(chosen.mode, chosen.seed)), split, chosen.mode, k, catalog_size
        )

    def ranking() -> dict[str, float]:
        return evaluate_model(fitter(preferences(split.train), ranker_for(chosen)), split, "implicit", k, catalog_size)

    scored: dict[str, Callable[[], Any]] = {
        "model": model,
        "popularity": lambda: evaluate_popularity(split, k, catalog_size),
    }
    if with_baseline:
        scored["baseline"] = baseline
    if ranker:
        scored["ranker"] = ranking
    results = dict(zip(scored, side_by_side(lambda score: score(), list(scored.values()), workers), strict=True))
    split.train.unpersist()
    split.test.unpersist()
    metrics, fit_seconds = results["model"]
    return Report(
        params.mode,
        k,
        params,
        metrics,
        results.get("baseline", {}),
        results["popularity"],
        rows,
        fit_seconds,
        trials,
        choice=choice,
        ranker=results.get("ranker", {}),
    )
