"""The building blocks of Setlist's suites: a named check = a Great Expectations expectation + a severity.

A row-level check also carries the same rule as a Spark condition, so that rows breaking a ``drop``
check can be routed to quarantine with the check's name in the same pass that keeps the others; the
gate verifies that GX and the condition count the same rows. Table-level checks (column set,
uniqueness, ...) can only ``warn`` or ``fail``. Reads and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from pyspark.sql import Column
from pyspark.sql import functions as F

from include.core.config import ConfigError

WARN, DROP, FAIL = "warn", "drop", "fail"
SEVERITIES = (WARN, DROP, FAIL)


@dataclass(frozen=True)
class Check:
    """One rule: its name (used in quarantine reasons and ``ops.dq_results``), severity and expectation."""

    name: str
    severity: str
    expectation: Callable[[], gxe.Expectation]
    violation: Callable[[], Column] | None = None  # True where a row breaks the rule; None: table-level

    @property
    def row_level(self) -> bool:
        return self.violation is not None


@dataclass(frozen=True)
class Suite:
    """The checks of one layer boundary, applied to one frame."""

    name: str
    layer: str
    checks: tuple[Check, ...]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def gx_suite(self) -> gx.ExpectationSuite:
        suite = gx.ExpectationSuite(name=self.name)
        for c in self.checks:
            expectation = c.expectation()
            expectation.meta = {"check": c.name, "severity": c.severity}
            suite.add_expectation(expectation)
        return suite

    def with_severities(self, overrides: Mapping[str, str]) -> Suite:
        """The suite with severities replaced for the checks named in ``overrides`` (others untouched)."""
        checks = []
        for c in self.checks:
            severity = overrides.get(c.name, c.severity)
            if severity == DROP and not c.row_level:
                raise ConfigError(f"dq_severity: {c.name} is a table-level check; allowed severities are warn, fail")
            checks.append(replace(c, severity=severity))
        return replace(self, checks=tuple(checks))


def parse_severities(value: str, known: Sequence[str]) -> dict[str, str]:
    """``rule=severity,rule=severity`` (the ``dq_severity`` setting) into a mapping, checked by name."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, severity = (s.strip() for s in item.partition("="))
        if name not in known:
            raise ConfigError(f"dq_severity: unknown check {name!r}; checks are {', '.join(sorted(known))}")
        if severity not in SEVERITIES:
            raise ConfigError(f"dq_severity: {name} must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        out[name] = severity
    return out


def _col(column: str) -> Column:
    return F.col(f"`{column}`")


def not_null(name: str, column: str, severity: str = DROP) -> Check:
    return Check(
        name, severity, lambda: gxe.ExpectColumnValuesToNotBeNull(column=column), lambda: _col(column).isNull()
    )


def is_null(name: str, column: str, severity: str = DROP) -> Check:
    return Check(
        name, severity, lambda: gxe.ExpectColumnValuesToBeNull(column=column), lambda: _col(column).isNotNull()
    )


def between(
    name: str,
    column: str,
    low: Any = None,
    high: Any = None,
    severity: str = DROP,
    strict_min: bool = False,
    strict_max: bool = False,
) -> Check:
    """Values in [low, high] (``strict_min``/``strict_max`` exclude the bound); nulls are not violations."""

    def outside() -> Column:
        c = _col(column)
        below = F.lit(False) if low is None else (c <= low if strict_min else c < low)
        above = F.lit(False) if high is None else (c >= high if strict_max else c > high)
        return F.coalesce(below | above, F.lit(False))

    return Check(
        name,
        severity,
        lambda: gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=low, max_value=high, strict_min=strict_min, strict_max=strict_max
        ),
        outside,
    )


def in_set(name: str, column: str, values: Sequence[Any], severity: str = DROP) -> Check:
    return Check(
        name,
        severity,
        lambda: gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)),
        lambda: F.coalesce(~_col(column).isin(*values), F.lit(False)),
    )


def matches(name: str, column: str, regex: str, severity: str = DROP) -> Check:
    """Non-null values match ``regex`` (Java syntax, searched anywhere unless anchored)."""
    return Check(
        name,
        severity,
        lambda: gxe.ExpectColumnValuesToMatchRegex(column=column, regex=regex),
        lambda: F.coalesce(~_col(column).rlike(regex), F.lit(False)),
    )


def not_matches(name: str, column: str, regex: str, severity: str = DROP) -> Check:
    return Check(
        name,
        severity,
        lambda: gxe.ExpectColumnValuesToNotMatchRegex(column=column, regex=regex),
        lambda: F.coalesce(_col(column).rlike(regex), F.lit(False)),
    )


def max_length(name: str, column: str, limit: int, severity: str = DROP) -> Check:
    return Check(
        name,
        severity,
        lambda: gxe.ExpectColumnValueLengthsToBeBetween(column=column, max_value=limit),
        lambda: F.coalesce(F.length(_col(column)) > limit, F.lit(False)),
    )


def columns_are(name: str, columns: Sequence[str], severity: str = FAIL) -> Check:
    return Check(name, severity, lambda: gxe.ExpectTableColumnsToMatchSet(column_set=list(columns), exact_match=True))


def unique(name: str, column: str, severity: str = FAIL) -> Check:
    return Check(name, severity, lambda: gxe.ExpectColumnValuesToBeUnique(column=column))


def table_not_null(name: str, column: str, severity: str = FAIL) -> Check:
    """A not-null check on an output frame: a violation fails (or warns), rows are never routed."""
    return Check(name, severity, lambda: gxe.ExpectColumnValuesToNotBeNull(column=column))


def table_between(name: str, column: str, low: Any = None, high: Any = None, severity: str = FAIL) -> Check:
    return Check(
        name, severity, lambda: gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
    )


def table_in_set(name: str, column: str, values: Sequence[Any], severity: str = FAIL) -> Check:
    return Check(name, severity, lambda: gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)))
