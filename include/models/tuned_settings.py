"""``ops.tuned_settings`` and ``ops.tuning_trials``: what each tuning run found, and every trial it ran.

Reads ``ops.tuned_settings`` (the newest tuned settings of a mode from data before a run date: what the nightly
fit uses). Writes one row per tuning run (MERGE on ``version``, ``<mode>-<as_of_date>``: a rerun replaces its own
row), its trials (the version's partition of ``ops.tuning_trials``, replaced on rerun) and, for a local lake, the
search plot ``<lake>/reports/tuning/<version>/search.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from include.core import tables
from include.lake import delta_io
from include.models.als import AlsParams


class Tuned(NamedTuple):
    """A tuning run's result as the nightly fit uses it: its version, parameters and validation metric."""

    version: str
    params: AlsParams
    metric: str
    value: float


def version_of(mode: str, as_of_date: str) -> str:
    return f"{mode}-{as_of_date}"


def newest(spark: SparkSession, lake: str, mode: str, before: str) -> Tuned | None:
    """The settings of ``mode``'s newest tuning run on data as of a day before ``before`` (so a rerun of a day
    fits what its first run fitted, whatever was tuned since), or None before the first."""
    if not delta_io.exists(spark, tables.OPS_TUNED_SETTINGS, lake):
        return None
    row = (
        delta_io.read(spark, tables.OPS_TUNED_SETTINGS, lake)
        .where((F.col("mode") == mode) & (F.col("as_of_date") < before))
        .orderBy(F.desc("as_of_date"))
        .select("version", "params", "primary_metric", "primary_value")
        .first()
    )
    if row is None:
        return None
    return Tuned(row["version"], AlsParams.from_json(row["params"]), row["primary_metric"], row["primary_value"])


def trial_rows(version: str, metric: str, trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``ops.tuning_trials`` rows of the trials :func:`include.models.evaluation.tune` returns."""
    return [
        {
            "version": version,
            "trial": t["trial"],
            "sampler": t["sampler"],
            "state": t["state"],
            "params": json.dumps(t["params"], sort_keys=True),
            "primary_metric": metric,
            "value": t[metric],
            "rung_value": t.get("rung"),
            "seconds": float(t["seconds"]),
            "chosen": bool(t["chosen"]),
            "failed": t.get("failed"),
        }
        for t in trials
    ]


def record(
    spark: SparkSession, lake: str, values: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], higher: bool
) -> list[str]:
    """Record a tuning run (``values``: an ``ops.tuned_settings`` row) and its trials (``higher`` metric values
    are better); returns the plots.
    The trials are written first: a crash between the two leaves no tuned settings the trials do not explain."""
    version = str(values["version"])
    rows = trial_rows(version, str(values["primary_metric"]), trials)
    frame = delta_io.rows_frame(spark, tables.OPS_TUNING_TRIALS, rows)
    delta_io.overwrite_partition(frame, tables.OPS_TUNING_TRIALS, lake, version)
    setting = delta_io.rows_frame(spark, tables.OPS_TUNED_SETTINGS, [values])
    delta_io.merge(setting, tables.OPS_TUNED_SETTINGS, lake, ["version"])
    if "://" in lake:
        return []
    from include.models import plots

    values_in_order = [math.nan if r["value"] is None else float(r["value"]) for r in rows]
    path = Path(lake) / "reports" / "tuning" / version / "search.png"
    return [plots.search(values_in_order, [r["state"] for r in rows], str(values["primary_metric"]), higher, path)]
