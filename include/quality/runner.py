"""Applies Setlist's data-quality suites to Spark frames: GX validation, severities, quarantine routing.

Reads the frame it is given. :func:`record` writes ``ops.dq_results`` (partition ``run_date``,
replaceWhere on the run's suites) and the job's pages of the lake's one GX Data Docs site,
``<lake>/_data_docs/`` (:func:`build_docs`); nothing else here writes. A suite is one GX validation over a cached
frame: GX bundles the counts of all its expectations into a few aggregate queries, and the rows that
break ``drop`` checks are found in the same pass that counts them.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
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


def docs_root(lake: str) -> Path:
    """The lake's one Data Docs site: under the lake when it is a local path, else under .build/."""
    local = "://" not in lake or lake.startswith("file:")
    return Path(lake.removeprefix("file:") if local else str(PROJECT_ROOT / ".build")) / "_data_docs"


_LINK = re.compile(r'((?:href|src)=")(?:\.\./|\./)*(static/|expectations/|index\.html)')


def build_docs(ctx: JobContext) -> str:
    """Add this job's validations to the lake's Data Docs site: GX renders them (into a scratch folder), each
    page lands in ``validations/run_date=<D>/<step>/<suite>.html`` (a rerun replaces it), GX's static files and
    the suites' pages once at the site's root, and the site's index lists every validation by day and job.
    Returns the index's path."""
    started = time.monotonic()
    root = docs_root(ctx.settings.lake)
    gx_context = context()
    with tempfile.TemporaryDirectory(prefix="setlist-docs-") as scratch:
        config = {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": scratch},
        }
        if DOCS_SITE in (gx_context.config.data_docs_sites or {}):
            gx_context.update_data_docs_site(DOCS_SITE, config)
        else:
            gx_context.add_data_docs_site(DOCS_SITE, config)
        gx_context.build_data_docs(site_names=[DOCS_SITE])
        rendered = Path(scratch)
        folder = root / "validations" / f"run_date={ctx.ds}" / ctx.step
        folder.mkdir(parents=True, exist_ok=True)
        for page in sorted(rendered.glob("validations/*/*/*/*.html")):  # <suite>/<run name>/<run time>/<page>
            html = _LINK.sub(lambda m: m.group(1) + "../../../" + m.group(2), page.read_text(encoding="utf-8"))
            (folder / f"{page.parts[-4]}.html").write_text(html, encoding="utf-8")
        if not (root / "static").exists():
            shutil.copytree(rendered / "static", root / "static")
        shutil.copytree(rendered / "expectations", root / "expectations", dirs_exist_ok=True)
    global _context
    _context = None  # the next job in this process renders only its own validations
    if earlier := sorted(root.glob("run_date=*")):  # the per-job sites of earlier versions, once
        for site in earlier:
            shutil.rmtree(site, ignore_errors=True)
        ctx.log(f"data docs: one site per lake now; removed {len(earlier)} per-day sites of an earlier version")
    index = write_docs_index(root)
    ctx.log(f"data docs: {folder} ({time.monotonic() - started:.1f}s); the site: {index}")
    return str(index)


def write_docs_index(root: Path) -> Path:
    """The site's index page: every validation page, newest day first, by job."""
    rows = []
    for day in sorted(root.glob("validations/run_date=*"), reverse=True):
        for job in sorted(p for p in day.iterdir() if p.is_dir()):
            links = " ".join(
                f'<a href="{page.relative_to(root).as_posix()}">{html.escape(page.stem)}</a>'
                for page in sorted(job.glob("*.html"))
            )
            rows.append(
                f"<tr><td>{html.escape(day.name.split('=', 1)[1])}</td><td>{job.name}</td><td>{links}</td></tr>"
            )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Setlist data quality</title>'
        '<link rel="stylesheet" href="static/styles/data_docs_default_styles.css"></head><body>'
        "<h1>Setlist data quality: every validation by day and job</h1>"
        "<p>Each check's result is also a row of <code>ops.dq_results</code>.</p>"
        "<table><tr><th>day</th><th>job</th><th>suites</th></tr>" + "".join(rows) + "</table></body></html>"
    )
    index = root / "index.html"
    tmp = index.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(index)  # readers never see half a page
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
