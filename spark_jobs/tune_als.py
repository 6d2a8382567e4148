"""Gold affinity -> the lake's tuned ALS settings: a search within a time budget, not every night's work.

Reads ``gold.user_track_affinity`` as of the newest day it holds on or before ``<run_date>`` (the day a weekly or
asset-triggered run finds), and the newest ``ops.tuned_settings`` of the mode from before that day (the search's
first candidate, as the nightly fit would use it). Searches on a validation split carved from the training split
the nightly evaluation uses (never its test split): the settings that apply, the baseline configuration and the
mode's best known ones, then Optuna's TPE proposals with pruning (:mod:`include.models.search`), starting no trial
after ``tuning_seconds``. Writes every trial to ``ops.tuning_trials`` and the best settings to
``ops.tuned_settings`` (version ``<mode>-<day>``; a rerun replaces both) with the search plot
``<lake>/reports/tuning/<version>/search.png``. Serves nothing: the next nightly fit uses the settings, and its
promotion decides.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from include.core import tables
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake import gold_state, jobs
from include.lake.spark import cached, fit_to_input
from include.models import als, evaluation, model_runs, tuned_settings
from spark_jobs.train_als import training_set

MAX_TRIALS = 1000  # the time budget ends a tuning run long before this


def newest_day(spark: SparkSession, lake: str, upto: str) -> str:
    """The newest day on or before ``upto`` that ``gold.user_track_affinity`` holds a state of."""
    days = gold_state.passed(spark, lake, upto)
    if not days:
        raise jobs.FitError(
            f"nothing to tune on: {tables.GOLD_AFFINITY.sql_name} holds no day on or before {upto};"
            " run the nightly pipeline first"
        )
    return max(days)


def tune(spark: SparkSession, ctx: jobs.JobContext) -> None:
    settings, lake = ctx.settings, ctx.settings.lake
    started = time.monotonic()
    day = newest_day(spark, lake, ctx.ds)
    if day != ctx.ds:
        ctx.log(f"tuning on {tables.GOLD_AFFINITY.sql_name} as of {day}, the newest day it holds")
    data = cached(training_set(gold_state.as_of(spark, lake, day, settings.als_value("alpha")), settings.als_mode))
    stats = data.agg(
        F.count("*").alias("rows"), F.countDistinct(USER_KEY).alias("u"), F.countDistinct(TRACK_KEY).alias("t")
    ).first()
    assert stats is not None
    if stats["rows"] == 0:
        raise jobs.FitError(f"no {settings.als_mode} training rows as of {day}: nothing to tune on")
    fit_to_input(spark, stats["rows"], settings)
    before = tuned_settings.newest(spark, lake, settings.als_mode, day)
    params = als.AlsParams.of(settings, before.params if before else None)
    source = settings.als_source(before.version if before else None)
    ctx.log(f"searching from {params.to_json()} ({source}) for at most {settings.tuning_seconds}s")
    split = evaluation.split_for(settings.als_mode, data, settings.seed)
    split = evaluation.Split(cached(split.train), split.test, split.positive, split.seed)
    budget = evaluation.Budget(MAX_TRIALS, settings.tuning_seconds, settings.als_given())
    workers = als.fits_at_once(settings, stats["rows"])
    best, trials, note = evaluation.tune(split, params, budget, settings.top_k, als.fitter(settings, spark), workers)
    name, higher = evaluation.primary_metric(settings.als_mode, settings.top_k)
    value = next(t[name] for t in trials if t["chosen"])
    version = tuned_settings.version_of(settings.als_mode, day)
    from include.core.packaging import code_version

    row = {
        "version": version, "mode": settings.als_mode, "as_of_date": day, "params": best.to_json(),
        "primary_metric": name, "primary_value": value,
        "baseline_value": next((t[name] for t in trials if t.get("baseline")), None),
        "start_value": trials[0][name], "trials": len(trials),
        "pruned": sum(t["state"] == "pruned" for t in trials), "failed": sum(t["state"] == "failed" for t in trials),
        "budget_seconds": float(settings.tuning_seconds), "duration_seconds": round(time.monotonic() - started, 3),
        "training_rows": stats["rows"], "users": stats["u"], "tracks": stats["t"],
        "input_versions": json.dumps(model_runs.input_versions(spark, lake, model_runs.INPUTS), sort_keys=True),
        "code_version": code_version(), "note": note, "run_id": ctx.run_id,
    }  # fmt: skip
    tuned_settings.record(spark, lake, row, trials, higher)
    start = trials[0][name]
    gain = "" if start is None or math.isnan(start) else f" (the settings that applied: {start:.4f})"
    ctx.log(f"{note}; tuned settings {version}: {best.to_json()}, {name}={value:.4f} on validation{gain}")


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("tune_als", __doc__ or "", tune, argv, model_args=True, settings_args=("tuning_seconds",))


if __name__ == "__main__":
    sys.exit(main())
