"""Applies Setlist's data-quality suites to Spark frames: GX validation, severities, quarantine routing.

Reads the frame it is given. :func:`record` writes ``ops.dq_results`` (partition ``run_date``,
replaceWhere on the run's suites) and a GX Data Docs site per job and run date under
``<lake>/_data_docs/run_date=<date>/<step>/``; nothing else here writes. A suite is one GX validation over a cached
frame: GX bundles the counts of all its expectations into a few aggregate queries, and the rows that
break ``drop`` checks are found in the same pass that counts them.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from include.core import tables
from include.core.config import PROJECT_ROOT
from include.core.schemas import REASONS
from include.lake import delta_io
from include.lake.jobs import DataQualityError, JobContext

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from expectations.checks import Suite

# Counts only: a list of sample values would add one query per expectation; quarantine keeps the rows.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
DOCS_SITE = "setlist"
ACTIONS = {"warn": "warned", "drop": "quarantined", "fail": "failed"}


@dataclass(frozen=True)
class CheckResult:
    suite: str
    layer: str
    check: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    element_count: int | None
    unexpected_count: int | None

    @property
    def action(self) -> str:
        return "passed" if self.success else ACTIONS[self.severity]

    @property
    def unexpected_percent(self) -> float | None:
        if not self.element_count or self.unexpected_count is None:
            return None
        return 100.0 * self.unexpected_count / self.element_count

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        counts = "" if self.unexpected_count is None else f": {self.unexpected_count} of {self.element_count} rows"
        return f"{self.check} ({self.expectation}{where}){counts}"


@dataclass(frozen=True)
class Outcome:
    """A validated frame: the rows kept, the rows quarantined (with ``_reasons``) and every check's result."""

    results: list[CheckResult]
    kept: DataFrame
    quarantined: DataFrame
    rows: int
    quarantined_rows: int


_context: Any = None


def context() -> Any:
    """The process's ephemeral GX context (suites need one to exist before they are built)."""
    global _context
    if _context is None:
        _context = gx.get_context(mode="ephemeral")
        _context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        # persist=False: GX would cache every validated frame and never release it; the frames are cached already.
        _context.data_sources.add_spark(name="setlist", persist=False)
    return _context


def _definition(name: str, suite: Any) -> Any:
    """A stored validation definition, so GX keeps its results for the Data Docs site."""
    ctx = context()
    source = ctx.data_sources.get("setlist")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name=name)
        asset.add_batch_definition_whole_dataframe("whole")
    stored = ctx.suites.add_or_update(suite)
    definition = gx.ValidationDefinition(name=name, data=asset.get_batch_definition("whole"), suite=stored)
    return ctx.validation_definitions.add_or_update(definition)


def validate(df: DataFrame, suite: Suite) -> list[CheckResult]:
    """Run the suite's expectations on ``df`` with GX; one result per check, in suite order."""
    started = time.monotonic()
    validation = _definition(suite.name, suite.gx_suite()).run(
        batch_parameters={"dataframe": df}, result_format=RESULT_FORMAT
    )
    log.info("validate %s: %d checks in %.1fs", suite.name, len(suite.checks), time.monotonic() - started)
    results = []
    for check, r in zip(suite.checks, validation.results, strict=True):
        config = r.expectation_config
        stats = r.result or {}
        results.append(
            CheckResult(
                suite=suite.name,
                layer=suite.layer,
                check=check.name,
                expectation=config.type,
                column=config.kwargs.get("column"),
                severity=check.severity,
                success=bool(r.success),
                element_count=stats.get("element_count"),
                unexpected_count=stats.get("unexpected_count"),
            )
        )
    return results


def apply(df: DataFrame, suite: Suite) -> Outcome:
    """Validate ``df`` (cached by the caller) and split it: rows breaking a ``drop`` check go to quarantine.

    The routing counts run first, so they are the pass that computes the frame; GX validates the cache.

    The rows each row-level check flags are counted in one aggregation and must equal GX's unexpected
    count for that check, so quarantine routing and the validation report cannot disagree.
    """
    row_checks = [(c, c.violation) for c in suite.checks if c.violation is not None]
    drop = [F.when(v(), F.lit(c.name)) for c, v in row_checks if c.severity == "drop"]
    reasons = F.array_compact(F.array(*drop)) if drop else F.array().cast("array<string>")
    flagged = df.withColumn(REASONS, reasons)
    aggs = [F.count(F.lit(1)).alias("_rows"), F.count(F.when(F.size(REASONS) > 0, 1)).alias("_bad")]
    aggs += [F.count(F.when(v(), 1)).alias(f"_n{i}") for i, (_, v) in enumerate(row_checks)]
    counts = flagged.agg(*aggs).first()  # the one pass over the data; GX then reads the cached frame
    assert counts is not None
    results = validate(df, suite)
    by_name = {r.check: r for r in results}
    for i, (c, _) in enumerate(row_checks):
        gx_count = by_name[c.name].unexpected_count
        if gx_count is not None and gx_count != counts[f"_n{i}"]:
            raise DataQualityError(
                f"{suite.name}: check {c.name} counted {gx_count} rows in GX but {counts[f'_n{i}']} when routing"
            )
    return Outcome(
        results=results,
        kept=flagged.where(F.size(REASONS) == 0).drop(REASONS),
        quarantined=flagged.where(F.size(REASONS) > 0),
        rows=int(counts["_rows"]),
        quarantined_rows=int(counts["_bad"]),
    )


def docs_dir(ctx: JobContext) -> str:
    """Where this job's Data Docs site goes: under the lake when it is a local path, else under .build/."""
    lake = ctx.settings.lake
    root = lake if "://" not in lake or lake.startswith("file:") else str(PROJECT_ROOT / ".build")
    return f"{root.removeprefix('file:')}/_data_docs/run_date={ctx.ds}/{ctx.step}"


def build_docs(ctx: JobContext) -> str:
    """Render a GX Data Docs site of every validation this process ran; returns its index.html path."""
    started = time.monotonic()
    site = docs_dir(ctx)
    shutil.rmtree(site, ignore_errors=True)  # a rerun replaces the run date's site
    gx_context = context()
    config = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": site},
    }
    if DOCS_SITE in (gx_context.config.data_docs_sites or {}):
        gx_context.update_data_docs_site(DOCS_SITE, config)
    else:
        gx_context.add_data_docs_site(DOCS_SITE, config)
    gx_context.build_data_docs(site_names=[DOCS_SITE])
    index = f"{site}/index.html"
    ctx.log(f"data docs: {index} ({time.monotonic() - started:.1f}s)")
    return index


def summarize(ctx: JobContext, results: list[CheckResult]) -> None:
    """One log line per check that did not pass, naming its action and counts."""
    for r in results:
        if not r.success:
            ctx.log(f"check {r.suite}.{r.describe()} -> {r.action}")


def record(spark: SparkSession, ctx: JobContext, results: list[CheckResult]) -> None:
    """Write the results to ``ops.dq_results`` (replacing this run date's rows of these suites), then
    stop the job with :class:`DataQualityError` if a ``fail`` check failed. Called before the layer's
    own writes, so a failed gate leaves the later layers as they were."""
    if not results:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        {
            "run_date": ctx.ds,
            "run_id": ctx.run_id,
            "layer": r.layer,
            "suite": r.suite,
            "check": r.check,
            "expectation": r.expectation,
            "column": r.column,
            "severity": r.severity,
            "success": r.success,
            "element_count": r.element_count,
            "unexpected_count": r.unexpected_count,
            "unexpected_percent": r.unexpected_percent,
            "action": r.action,
            "validated_at": now,
        }
        for r in results
    ]
    suites = sorted({r.suite for r in results})
    where = "suite IN (" + ", ".join(f"'{s}'" for s in suites) + ")"
    frame = delta_io.rows_frame(spark, tables.OPS_DQ_RESULTS, rows)
    delta_io.overwrite_partition(frame, tables.OPS_DQ_RESULTS, ctx.settings.lake, ctx.ds, where=where)
    summarize(ctx, results)
    build_docs(ctx)
    raise_failed(results)


def raise_failed(results: list[CheckResult]) -> None:
    """Raise :class:`DataQualityError` naming the suites and every ``fail`` check that failed."""
    failed = [r for r in results if r.action == "failed"]
    if failed:
        suites = ", ".join(sorted({r.suite for r in failed}))
        raise DataQualityError(f"data quality gate {suites} failed: " + "; ".join(r.describe() for r in failed))


def gate(df: DataFrame, suite: Suite) -> list[CheckResult]:
    """Validate an output frame and raise :class:`DataQualityError` naming every failed ``fail`` check."""
    results = validate(df, suite)
    raise_failed(results)
    return results
