"""The daily report the ``setlist_daily_report`` DAG writes each time ``gold.recommendations`` changes.

Reads, through delta-rs and DuckDB (no JVM), the newest ``gold.recommendations`` run and, for its run date,
``ops.layer_counts``, ``ops.dq_results``, the run's model in ``ops.models`` and its evaluation in
``ops.model_runs``. Writes
``<lake>/reports/run_date=<D>/report.md``, replaced on a rerun: the report is a function of those tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from include.core import tables
from include.serving import lookup

log = logging.getLogger(__name__)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]


def _rows(sql: str, lake: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    return lookup.query(sql, lake, missing_ok=True)


def build(lake: str) -> tuple[str, str]:
    """(run date, Markdown) of the newest recommendations run; raises LookupError before the first one."""
    _, latest = _rows("SELECT max(run_date) FROM gold.recommendations", lake)
    if not latest or latest[0][0] is None:
        raise LookupError(f"no {tables.GOLD_RECOMMENDATIONS.sql_name} run under {lake} yet")
    day = str(latest[0][0])
    where = f"run_date = '{day}'"
    recs = _rows(
        "SELECT source, model_version, count(DISTINCT user_id) AS users, count(*) AS rows"
        f" FROM gold.recommendations WHERE {where} GROUP BY source, model_version ORDER BY source",
        lake,
    )
    counts = _rows(
        "SELECT layer, source, rows_in, rows_out, quarantined, duplicates"
        f" FROM ops.layer_counts WHERE {where} ORDER BY layer, source",
        lake,
    )
    dq_total = _rows(
        f"SELECT count(*) AS checks, sum(CAST(success AS INT)) AS passed FROM ops.dq_results WHERE {where}", lake
    )
    dq_failed = _rows(
        'SELECT suite, "check", severity, action, unexpected_count, element_count'
        f' FROM ops.dq_results WHERE {where} AND NOT success ORDER BY suite, "check"',
        lake,
    )
    models = _rows(
        "SELECT model_version, mode, params, training_rows, users, tracks, fit_seconds FROM ops.models"
        f" WHERE model_version IN (SELECT model_version FROM gold.recommendations WHERE {where})",
        lake,
    )
    evaluation = _rows(
        "SELECT run_key, primary_metric AS metric, primary_value AS model,"
        " baseline_metrics[primary_metric] AS baseline_config, popularity_metrics[primary_metric] AS popularity,"
        " promoted, decision FROM ops.model_runs"
        f" WHERE run_key IN (SELECT model_version FROM gold.recommendations WHERE {where})",
        lake,
    )
    lines = [
        f"# Setlist daily report: {day}",
        "",
        "## Recommendations",
        *_table(*recs),
        "",
        "## Rows per layer (in = out + quarantined + duplicates)",
        *_table(*counts),
        "",
        "## Data quality",
        *_table(*dq_total),
        "",
        "Checks that did not pass:",
        "",
        *_table(*dq_failed),
        "",
        "## Model",
        *_table(*models),
        "",
        "## Model evaluation (held-out split, beside the baselines)",
        *_table(*evaluation),
        "",
    ]
    return day, "\n".join(lines)


def write(lake: str) -> str:
    """Build the report and write it under the lake; returns its path."""
    from include.core.log import setup

    setup()
    import pyarrow.fs as pafs

    day, text = build(lake)
    path = f"{lookup.lake_uri(lake)}/reports/run_date={day}/report.md"
    filesystem, inner = pafs.FileSystem.from_uri(path if "://" in path else f"file://{path}")
    filesystem.create_dir(inner.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(inner) as out:  # replaces the file as a whole
        out.write(text.encode("utf-8"))
    log.info("report %s: %s", day, path)
    return path
