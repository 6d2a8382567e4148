"""``ops.model_runs``: one row per training run, with its parameters, metrics, inputs and the promotion decision.

Reads ``ops.model_runs`` (the champion: the newest promoted nightly run of the mode before this run date)
and the Delta versions of the run's input tables. Writes one row per run (MERGE on ``run_key``, so a
rerun replaces its own row) and, for a local lake, the run's PNG plots under
``<lake>/reports/model_runs/<run_key>/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from include.core import tables
from include.lake import delta_io
from include.models import tuned_settings
from include.models.evaluation import Report, no_worse


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    champion_run_key: str | None = None
    champion_value: float | None = None


class Champion(NamedTuple):
    """The model a run competes with: its run, its primary metric's value and its parameters (JSON)."""

    run_key: str
    value: float
    params: str


def champion(spark: SparkSession, lake: str, mode: str, before: str) -> Champion | None:
    """The newest promoted nightly run of ``mode`` with a run date before ``before`` (a rerun of a day
    compares with the same champion as its first run)."""
    if not delta_io.exists(spark, tables.OPS_MODEL_RUNS, lake):
        return None
    row = (
        delta_io.read(spark, tables.OPS_MODEL_RUNS, lake)
        .where((F.col("kind") == "nightly") & (F.col("mode") == mode) & F.col("promoted"))
        .where(F.col("run_date") < before)
        .orderBy(F.desc("run_date"))
        .select("run_key", "primary_value", "params")
        .first()
    )
    return None if row is None else Champion(row["run_key"], float(row["primary_value"]), row["params"])


def decide(report: Report, current: Champion | None, tolerance: float) -> Decision:
    """Promote unless the primary metric is worse than the champion's by more than ``tolerance`` (relative)."""
    name, value, higher = report.primary
    if current is None:
        return Decision(True, f"no champion yet: promoted with {name}={value:.4f}")
    key, best, _ = current
    if math.isnan(value):
        return Decision(False, f"{name} could not be computed; {key} stays", key, best)
    better = "higher" if higher else "lower"
    if no_worse(value, best, higher, tolerance):
        reason = f"{name}={value:.4f} vs champion {key} {best:.4f} ({better} is better, tolerance {tolerance:.0%})"
        return Decision(True, reason, key, best)
    return Decision(
        False,
        f"{name}={value:.4f} is worse than champion {key}'s {best:.4f} by more than {tolerance:.0%}"
        f" ({better} is better): gold.recommendations keeps the champion's lists",
        key,
        best,
    )


def tuning_due(report: Report, tuned: tuned_settings.Tuned | None, drop: float) -> str:
    """One line when ``report``'s primary metric is worse than the tuned settings' own validation metric by more
    than ``drop`` (relative; 0: never): the data moved away from what they were tuned on. Empty otherwise."""
    name, value, higher = report.primary
    if (
        tuned is None
        or not drop
        or tuned.metric != name
        or math.isnan(value)
        or no_worse(value, tuned.value, higher, drop)
    ):
        return ""
    return (
        f"tuning due: {name}={value:.4f} is worse than {tuned.value:.4f}, tuned settings {tuned.version}'s own on"
        f" validation, by more than {drop:.0%}; the setlist_tuning DAG runs next"
    )


def input_versions(spark: SparkSession, lake: str, inputs: Sequence[tables.Table]) -> dict[str, int]:
    return {t.sql_name: delta_io.version(spark, t, lake) for t in inputs if delta_io.exists(spark, t, lake)}


def row(
    report: Report,
    *,
    run_key: str,
    kind: str,
    run_date: str,
    source: str,
    decision: Decision,
    versions: Mapping[str, int],
    code_version: str,
    duration_seconds: float,
    run_id: str,
    serve_model: str = "auto",
    params_source: str | None = None,
    tuned_version: str | None = None,
    tuning_due: bool = False,
) -> dict[str, Any]:
    name, value, _ = report.primary
    served_mode, served_reason = report.serving(serve_model)
    return {
        "run_key": run_key,
        "kind": kind,
        "run_date": run_date,
        "source": source,
        "mode": report.mode,
        "params": report.params.to_json(),
        "tuned": bool(report.trials),
        "trials": json.dumps(report.trials),
        "k": report.k,
        "metrics": report.metrics,
        "baseline_metrics": report.baseline,
        "popularity_metrics": report.popularity,
        "primary_metric": name,
        "primary_value": value,
        "champion_run_key": decision.champion_run_key,
        "champion_value": decision.champion_value,
        "promoted": decision.promoted,
        "decision": decision.reason,
        "input_versions": json.dumps(dict(versions), sort_keys=True),
        "code_version": code_version,
        "training_rows": report.training_rows,
        "fit_seconds": round(report.fit_seconds, 3),
        "rows_per_second": round(report.rows_per_second, 1),
        "duration_seconds": round(duration_seconds, 3),
        "run_id": run_id,
        "served_mode": served_mode,
        "served_reason": served_reason,
        "ranker_metrics": report.ranker,
        "params_source": params_source,
        "tuned_version": tuned_version,
        "tuning_due": tuning_due,
    }


INPUTS = (tables.GOLD_AFFINITY, tables.SILVER_INTERACTIONS)


def record_run(
    spark: SparkSession,
    lake: str,
    report: Report,
    data: DataFrame,
    *,
    run_key: str,
    kind: str,
    run_date: str,
    source: str,
    decision: Decision,
    duration_seconds: float,
    run_id: str,
    serve_model: str = "auto",
    params_source: str | None = None,
    tuned_version: str | None = None,
    tuning_due: bool = False,
) -> list[str]:
    """Record one run (with its input versions and code version, which model serves: ``serve_model`` as
    :meth:`Report.serving` reads it, and where its parameters came from) and write its plots; returns the plots."""
    from include.core.packaging import code_version

    values = row(
        report,
        run_key=run_key,
        kind=kind,
        run_date=run_date,
        source=source,
        decision=decision,
        versions=input_versions(spark, lake, INPUTS),
        code_version=code_version(),
        duration_seconds=duration_seconds,
        run_id=run_id,
        serve_model=serve_model,
        params_source=params_source,
        tuned_version=tuned_version,
        tuning_due=tuning_due,
    )
    record(spark, lake, values)
    return write_plots(spark, lake, run_key, kind, report.mode, data)


def record(spark: SparkSession, lake: str, values: Mapping[str, Any]) -> None:
    delta_io.merge(
        delta_io.rows_frame(spark, tables.OPS_MODEL_RUNS, [values]), tables.OPS_MODEL_RUNS, lake, ["run_key"]
    )


def decision_of(spark: SparkSession, lake: str, run_key: str) -> Decision | None:
    """The recorded promotion decision of a run, or None when the run was not evaluated."""
    if not delta_io.exists(spark, tables.OPS_MODEL_RUNS, lake):
        return None
    found = delta_io.read(spark, tables.OPS_MODEL_RUNS, lake).where(F.col("run_key") == run_key).first()
    return None if found is None else Decision(bool(found["promoted"]), str(found["decision"]))


def history(spark: SparkSession, lake: str, kind: str, mode: str) -> DataFrame:
    return delta_io.read(spark, tables.OPS_MODEL_RUNS, lake).where((F.col("kind") == kind) & (F.col("mode") == mode))


def write_plots(spark: SparkSession, lake: str, run_key: str, kind: str, mode: str, ratings: DataFrame) -> list[str]:
    """``metrics.png`` (the primary metric across runs, model beside baselines) and ``ratings.png`` (the
    distribution of the run's training values). Only for a lake on the local file system."""
    if "://" in lake:
        return []
    from include.models import plots

    out = Path(lake) / "reports" / "model_runs" / run_key
    runs = history(spark, lake, kind, mode).orderBy("evaluated_at").toPandas()
    counts = ratings.groupBy(F.round("rating", 1).alias("value")).count().orderBy("value").toPandas()
    return [plots.metrics_across_runs(runs, out / "metrics.png"), plots.distribution(counts, mode, out / "ratings.png")]
