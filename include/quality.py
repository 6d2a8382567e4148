"""Runs a Great Expectations suite against a Spark DataFrame and stops the job when it fails.

Reads the frame it is given (one GX validation over a cached frame); writes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark.sql import DataFrame

from include.jobs import DataQualityError


# Counts only: GX bundles every count of a suite into a few aggregate queries over the frame; a list of
# sample values would add one query per expectation (the quarantine keeps the offending rows instead).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class CheckResult:
    expectation: str
    column: str | None
    success: bool
    element_count: int | None
    unexpected_count: int | None

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        counts = "" if self.unexpected_count is None else f" ({self.unexpected_count} of {self.element_count} rows)"
        return f"{self.expectation}{where}{counts}"


_context: Any = None


def context() -> Any:
    """The process's ephemeral GX context (suites need one to exist before they are built)."""
    global _context
    if _context is None:
        _context = gx.get_context(mode="ephemeral")
        _context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        _context.data_sources.add_spark(name="setlist")
    return _context


def _batch(df: DataFrame, name: str) -> Any:
    source = context().data_sources.get("setlist")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name=name)
        asset.add_batch_definition_whole_dataframe("whole")
    return asset.get_batch_definition("whole").get_batch(batch_parameters={"dataframe": df})


def run_suite(df: DataFrame, suite: gx.ExpectationSuite) -> list[CheckResult]:
    """Validate ``df`` against ``suite`` and return one result per expectation."""
    validation = _batch(df, suite.name).validate(suite, result_format=RESULT_FORMAT)
    results = []
    for r in validation.results:
        config = r.expectation_config
        stats = r.result or {}
        results.append(
            CheckResult(
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=bool(r.success),
                element_count=stats.get("element_count"),
                unexpected_count=stats.get("unexpected_count"),
            )
        )
    return results


def gate(df: DataFrame, suite: gx.ExpectationSuite) -> list[CheckResult]:
    """Validate and raise :class:`DataQualityError` naming every failed expectation."""
    started = time.monotonic()
    results = run_suite(df, suite)
    print(f"[setlist] gate {suite.name}: {len(results)} expectations in {time.monotonic() - started:.1f}s", flush=True)
    failed = [r for r in results if not r.success]
    if failed:
        raise DataQualityError(f"data quality gate {suite.name} failed: " + "; ".join(r.describe() for r in failed))
    return results
