"""A ratings or plays file of another shape -> the pipeline -> an honest evaluation of ALS on it.

Reads the source file named by ``--path`` through a source mapping (``--source``: a shipped name or a
.json file), lands it as one day in the raw CSV contract, and runs the pipeline's own bronze, silver and
gold jobs on it (quarantine and data-quality results included). Then splits ``gold.user_track_affinity``
deterministically, tunes from the best known settings (``--tune-trials``, ``--tune-seconds``; 0 turns it off),
fits the chosen model, the baseline configuration and popularity on the same split, and prints the metric table
(``--json``: one JSON object).
With ``--splits N`` all of that runs on N independent splits and the table gives means and standard deviations.
Writes the evaluation lake's tables, one ``ops.model_runs`` row (kind ``evaluate``) and the run's PNG plots.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from include.core.commands import CommandExit, invoke
from include.core.config import ALS_MODES, PROJECT_ROOT, load_settings, parse_run_date
from include.lake import gold_state, jobs
from include.lake.spark import cached

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from include.lake.sources import SourceMapping
    from include.models.evaluation import Report


def _splits(ctx: click.Context | None, param: click.Parameter | None, text: str) -> int:
    from include.models.evaluation import MAX_SPLITS

    if not str(text).isdigit() or not 1 <= int(text) <= MAX_SPLITS:
        raise click.BadParameter(f"must be a whole number from 1 to {MAX_SPLITS}, got {str(text)!r}")
    return int(text)


MODEL_OPTIONS = (
    "rank", "max_iter", "reg_param", "alpha", "top_k", "als_biases", "tune_trials", "tune_seconds", "serve_model"
)  # fmt: skip


@click.command(
    "evaluate",
    help="load a ratings/plays file through a source mapping and the pipeline, then evaluate ALS on it",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--source", required=True, help="a shipped mapping (movielens, movielens-100k, play-counts) or a mapping .json"
)
@click.option("--path", required=True, help="the events file (ratings.csv, u.data, ...)")
@click.option("--mode", type=click.Choice(ALS_MODES), required=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of the table")
@click.option("--lake", default=None, help="the evaluation lake (default: ./lake-evaluate/<source name>)")
@click.option(
    "--run-date",
    default=None,
    help="the landing day the file is loaded as (default: today, UTC; events after it are quarantined)",
)
@click.option(
    "--tune-trials",
    default=None,
    help="tuning: at most this many candidates per split (default: $SETLIST_TUNE_TRIALS or 1000; 0: no tuning)",
)
@click.option(
    "--tune-seconds",
    default=None,
    help="tuning: no candidate starts after this many seconds per split (default: $SETLIST_TUNE_SECONDS or 120;"
    " 0: no tuning)",
)
@click.option(
    "--splits",
    callback=_splits,
    default="1",
    help="repeated holdout: evaluate on this many independent splits and report means and standard deviations"
    " (1 to 20, default 1)",
)
@click.option("--run-id", default="evaluate", show_default=True, help="the run id recorded in ops.model_runs")
@click.option("--rank", default=None, help="ALS rank where tuning starts (default: $SETLIST_RANK or the best known)")
@click.option("--max-iter", default=None, help="ALS iterations (default: $SETLIST_MAX_ITER or the best known)")
@click.option("--reg-param", default=None, help="ALS regParam (default: $SETLIST_REG_PARAM or the best known)")
@click.option("--alpha", default=None, help="implicit ALS's confidence scale (default: $SETLIST_ALPHA or 5)")
@click.option("--top-k", default=None, help="K of the ranking metrics (default: $SETLIST_TOP_K or 10)")
@click.option("--als-biases", default=None, help="explicit mode: fit biases first, true or false (default: true)")
@click.option(
    "--serve-model",
    default=None,
    help="explicit mode: auto (default) also scores implicit ALS on the same ratings and says which model the"
    " nightly run would serve; explicit skips it",
)
def command(**options: Any) -> int:
    return run(options)


def metric_table(report: Report) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The table's header and its (metric, model, baseline config, popularity[, implicit on ratings]) rows; '-'
    where a scorer has no such metric; with repeated splits each cell is the mean +/- its standard deviation."""

    def cell(values: dict[str, float], name: str) -> str:
        v = values.get(name)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        sd = values.get(f"{name}_sd")
        return f"{v:.4f}" if sd is None else f"{v:.4f} +/- {sd:.4f}"

    columns = {"model": report.metrics, "baseline config": report.baseline, "popularity": report.popularity}
    if report.ranker:
        columns["implicit on ratings"] = report.ranker
    names = [n for n in report.metrics if n not in ("users_evaluated", "scored") and not n.endswith("_sd")]
    return ("metric", *columns), [(n, *(cell(values, n) for values in columns.values())) for n in names]


def evaluate(
    spark: SparkSession, ctx: jobs.JobContext, mapping: SourceMapping, path: str, splits: int = 1
) -> dict[str, Any]:
    from include.lake import sources
    from include.models import als, evaluation, model_runs
    from spark_jobs import build_gold, build_silver, ingest_bronze, train_als

    started = time.monotonic()
    landed = sources.land(spark, mapping, path, ctx.settings.lake, ctx.ds)
    ctx.log(f"{mapping.name}: landed {landed['interactions']} events and {landed['tracks']} catalog rows from {path}")
    for step in (ingest_bronze.ingest_all, build_silver.build, build_gold.build):
        step(spark, ctx)
    affinity = gold_state.as_of(spark, ctx.settings.lake, ctx.ds, ctx.settings.als_value("alpha"))
    data = cached(train_als.training_set(affinity, ctx.settings.als_mode))
    params = als.AlsParams.of(ctx.settings)
    fitter = als.fitter(ctx.settings, spark)
    budget = evaluation.Budget.of(ctx.settings)
    ranker = evaluation.scores_ranker(ctx.settings.serve_model)
    workers = als.fits_at_once(ctx.settings, data.count())
    report = evaluation.evaluate(
        data, params, ctx.settings.top_k, fitter, budget, splits=splits, ranker=ranker, workers=workers
    )
    run_key = f"evaluate-{mapping.name}-{report.mode}-{report.params.digest()}-{ctx.ds}"
    split = "random 80/20 by pair" if report.mode == "explicit" else "per-user 20% holdout"
    if splits > 1:
        run_key += f"-x{splits}"
        split += f", repeated on {splits} splits (seeds {', '.join(str(s['split_seed']) for s in report.splits)})"
    plots = model_runs.record_run(
        spark,
        ctx.settings.lake,
        report,
        data,
        run_key=run_key,
        kind="evaluate",
        run_date=ctx.ds,
        source=mapping.name,
        decision=model_runs.Decision(False, "evaluation only: never promoted"),
        duration_seconds=time.monotonic() - started,
        run_id=ctx.run_id,
        serve_model=ctx.settings.serve_model,
    )
    served, why = report.serving(ctx.settings.serve_model)
    return {
        "source": mapping.name,
        "path": path,
        "mode": report.mode,
        "k": report.k,
        "split": split,
        "splits": report.splits,
        "params": report.params.as_dict(),
        "tuned": bool(report.trials),
        "choice": report.choice,
        "trials": report.trials,
        "metrics": report.metrics,
        "baseline": {"params": evaluation.baseline_for(report.mode, params.seed).as_dict(), "metrics": report.baseline},
        "popularity": report.popularity,
        "ranker": {"params": report.ranker_params.as_dict(), "metrics": report.ranker} if report.ranker else None,
        "serving": {"mode": served, "reason": why},
        "training_rows": report.training_rows,
        "fit_seconds": round(report.fit_seconds, 3),
        "rows_per_second": round(report.rows_per_second, 1),
        "run_key": run_key,
        "lake": ctx.settings.lake,
        "plots": plots,
        "_report": report,
    }


def print_report(result: dict[str, Any], as_json: bool) -> None:
    report = result.pop("_report")
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    from include.cli.output import format_table

    print(f"{result['source']} {result['mode']} ({result['split']}, K={result['k']}): {result['path']}")
    print(f"model: {json.dumps(result['params'], sort_keys=True)}{' (tuned)' if result['tuned'] else ''}")
    if result["choice"]:
        print(f"tuning: {result['choice']}")
    print(f"baseline config: {json.dumps(result['baseline']['params'], sort_keys=True)}")
    if result["ranker"]:
        print(f"implicit on ratings: {json.dumps(result['ranker']['params'], sort_keys=True)}")
    print(format_table(*metric_table(report)))
    name, value, higher = report.primary

    def against_popularity(model: float, popular: float) -> str:
        # Popularity has no rating error: the ratio applies to the ranking metrics (higher is better) only.
        if not higher or not popular or math.isnan(popular):
            return ""
        return f", popularity {popular:.4f} (model / popularity {model / popular:.3f})"

    print(f"{name}: model {value:.4f}{against_popularity(value, report.popularity.get(name, math.nan))}")
    for s in result["splits"]:
        print(
            f"  split seed {s['split_seed']}: {name} model {s['model']:.4f}, baseline config {s['baseline']:.4f}"
            f"{against_popularity(s['model'], s['popularity'])}; params {json.dumps(s['params'], sort_keys=True)}"
        )
    print(
        f"fit: {result['training_rows']} training rows in {result['fit_seconds']:.1f}s"
        f" ({result['rows_per_second']:.0f} rows/s); recorded as {result['run_key']} in ops.model_runs"
    )
    if report.mode == "explicit":
        print(f"gold.recommendations would use the {result['serving']['mode']} model: {result['serving']['reason']}")
    for plot in result["plots"]:
        print(f"plot: {plot}")


def run(options: dict[str, Any]) -> int:
    """Evaluate with the command's options; the exit code."""
    result: dict[str, Any] = {}

    def body() -> None:
        from include.lake import sources
        from include.lake.spark import get_spark

        mapping = sources.load(options["source"])
        lake = options["lake"] or str(PROJECT_ROOT / "lake-evaluate" / mapping.name)
        overrides = {k: options[k] for k in MODEL_OPTIONS}
        base = load_settings(lake=lake, als_mode=options["mode"], **overrides)
        if not mapping.audio_features:
            severities = ",".join(f"{c}=warn" for c in sources.FEATURE_CHECKS)
            base = base.with_overrides(dq_severity=",".join(s for s in (base.dq_severity, severities) if s))
        given = options["run_date"]
        day = parse_run_date(given, "--run-date") if given else dt.datetime.now(dt.UTC).date()
        ctx = jobs.JobContext("evaluate", day, options["run_id"], base)
        jobs.preload("include.quality.runner")
        spark = get_spark("setlist-evaluate", base)
        result.update(evaluate(spark, ctx, mapping, options["path"], options["splits"]))

    # With --json, stdout carries only the JSON object: progress lines go to stderr.
    with contextlib.redirect_stdout(sys.stderr) if options["as_json"] else contextlib.nullcontext():
        code = jobs.run("evaluate", body)
    if code == 0:
        print_report(result, options["as_json"])
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``setlist evaluate``: the exit code (2 for an invalid argument, with one line naming it)."""
    try:
        return int(invoke(command, argv, "setlist evaluate") or 0)
    except CommandExit as exc:
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
