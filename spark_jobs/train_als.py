"""Gold affinity -> an ALS model (Spark MLlib), explicit on ratings or implicit on plays.

Reads ``gold.user_track_affinity`` as of ``<run_date>`` (:func:`include.lake.gold_state.as_of`) and the newest
``ops.tuned_settings`` of the mode from before it. First evaluates the parameters that apply (no search) on a
deterministic split of the same data (with the baseline configuration and popularity beside them) and records the
run, its promotion decision and whether the next tuning run is due in ``ops.model_runs`` (MERGE on run_key) with
its plots; ``recommend`` acts on the decision. On ratings (explicit mode) implicit ALS on the same ratings ranks
beside the explicit model on the same split, and the model that ranks better is the one saved for ``recommend``
(``serve_model``); the run keeps the explicit model's RMSE and MAE and records which model serves and why. Checks
the factors with the ``model_factors`` suite (results in ``ops.dq_results``; a failure keeps the previous model).
Writes the model to ``<lake>/models/als/<model_version>`` (overwritten on rerun) and one row in ``ops.models``
(MERGE on model_version). Uses ``<lake>/_checkpoints`` as the checkpoint directory: without one, long ALS lineages
overflow the stack at around 20 iterations.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from include.core import schemas, tables
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake import delta_io, gold_state, jobs
from include.lake.spark import cached, fit_to_input
from include.models import als, evaluation, model_runs, tuned_settings
from include.models.model_version import model_version

RATING_COLUMN = {"explicit": "latest_rating", "implicit": "strength"}


def training_set(affinity: DataFrame, mode: str) -> DataFrame:
    """(user_key, track_key, rating): explicit ratings only, or implicit play strength for every pair."""
    column = RATING_COLUMN[mode]
    return affinity.where(F.col(column).isNotNull()).select(
        USER_KEY, TRACK_KEY, F.col(column).cast("float").alias("rating")
    )


def factor_rows(model: als.Factors) -> DataFrame:
    """What the ``model_factors`` suite checks: one row per user and per track factor vector with its
    ``length`` and ``finite`` (every value a finite number). Non-finite factors would give NaN scores."""
    frames = []
    for side, factors in (("user", model.users), ("track", model.items)):
        frames.append(
            factors.select(
                F.lit(side).alias("side"),
                "id",
                "features",
                F.size("features").alias("length"),
                F.forall("features", lambda x: x.isNotNull() & schemas.finite(x)).alias("finite"),
            )
        )
    return frames[0].unionByName(frames[1])


def evaluate_and_decide(
    spark: SparkSession, ctx: jobs.JobContext, data: DataFrame, rows: int, version: str, fitter: evaluation.Fitter
) -> evaluation.Report:
    """Evaluate the parameters that apply (the configured ones, else the newest tuning run's from before the run
    date, else the mode's best known) on a split of today's data beside the baseline configuration and
    popularity (and, on ratings, implicit ALS), decide promotion against the champion, say whether the next
    tuning run is due, and record it all in ``ops.model_runs``. No search: searching is a tuning run's work."""
    settings = ctx.settings
    started = time.monotonic()
    current = model_runs.champion(spark, settings.lake, settings.als_mode, ctx.ds)
    tuned = tuned_settings.newest(spark, settings.lake, settings.als_mode, ctx.ds)
    params = als.AlsParams.of(settings, tuned.params if tuned else None)
    source = settings.als_source(tuned.version if tuned else None)
    ctx.log(f"fitting {params.to_json()} ({source}; no search)")
    ranker = evaluation.scores_ranker(settings.serve_model)
    workers = als.fits_at_once(settings, rows)
    report = evaluation.evaluate(
        data, params, settings.top_k, fitter, evaluation.NO_TUNING, ranker=ranker, workers=workers
    )
    decision = model_runs.decide(report, current, settings.promotion_tolerance)
    due = model_runs.tuning_due(report, tuned, settings.tuning_due_drop)
    model_runs.record_run(
        spark,
        settings.lake,
        report,
        data,
        run_key=version,
        kind="nightly",
        run_date=ctx.ds,
        source="landing",
        decision=decision,
        duration_seconds=time.monotonic() - started,
        run_id=ctx.run_id,
        serve_model=settings.serve_model,
        params_source=source,
        tuned_version=tuned.version if tuned else None,
        tuning_due=bool(due),
    )
    name, value, _ = report.primary
    popular = report.popularity.get(name, float("nan"))
    ctx.log(f"evaluated: {name}={value:.4f} (popularity {popular:.4f}); {decision.reason}")
    if due:
        ctx.log(due)
    return report


def train(spark: SparkSession, ctx: jobs.JobContext) -> None:
    lake, ds, settings = ctx.settings.lake, ctx.ds, ctx.settings
    affinity = gold_state.as_of(spark, lake, ds, settings.als_value("alpha"))
    data = cached(training_set(affinity, settings.als_mode))
    stats = data.agg(
        F.count("*").alias("rows"), F.countDistinct(USER_KEY).alias("u"), F.countDistinct(TRACK_KEY).alias("t")
    ).first()
    assert stats is not None
    version = model_version(settings, ds)
    fit_to_input(spark, stats["rows"], settings)
    if stats["rows"] == 0:
        ctx.log(f"no {settings.als_mode} training rows: no model; recommend falls back to popularity")
        return
    fitter = als.fitter(settings, spark)
    try:
        report = evaluate_and_decide(spark, ctx, data, stats["rows"], version, fitter)
        params = report.params
        served, why = report.serving(settings.serve_model)
        if served != report.mode:
            data, params = evaluation.preferences(data), report.ranker_params
        if report.mode == "explicit":
            ctx.log(f"serving the {served} model: {why}")
        started = time.monotonic()
        model = fitter(data, params)
        fit_seconds = time.monotonic() - started
    except als.FitError as exc:  # a retry would meet the same input: recommend serves popularity instead
        ctx.log(f"{exc}: no model; recommend falls back to popularity")
        return
    from expectations import suites
    from include.quality import runner as quality

    factors = cached(factor_rows(model))
    factors.count()  # GX validates the cached frame
    quality.record(spark, ctx, quality.validate(factors, suites.model_factors(model.rank, settings.dq_severity)))
    path = tables.model_path(lake, version)
    model.save(path)
    row = {
        "model_version": version, "run_date": ds, "mode": params.mode, "params": params.to_json(),
        "path": path, "training_rows": stats["rows"], "users": stats["u"], "tracks": stats["t"],
        "fit_seconds": round(fit_seconds, 3), "run_id": ctx.run_id,
    }  # fmt: skip
    record = delta_io.rows_frame(spark, tables.OPS_MODELS, [row])
    delta_io.merge(record, tables.OPS_MODELS, lake, ["model_version"])
    ctx.log(
        f"{params.mode} ALS {params.to_json()} on {stats['rows']} rows"
        f" ({stats['u']} users x {stats['t']} tracks) in {fit_seconds:.1f}s -> {version}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("train_als", __doc__ or "", train, argv, model_args=True)


if __name__ == "__main__":
    sys.exit(main())
