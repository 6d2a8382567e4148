"""Daily report, scheduled on data: runs whenever the nightly DAG's ``recommend`` task updates the
``gold.recommendations`` asset, and writes ``<lake>/reports/run_date=<D>/report.md`` (recommendations by
source, rows per layer, data-quality results, the model). The task reads through delta-rs and DuckDB: no
Spark job. This file only wires the task; the logic is in ``include/serving/report.py``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, task

from include.core.config import load_settings
from include.core.tables import GOLD_RECOMMENDATIONS
from include.orchestration.dag_spec import DEFAULT_ARGS, REPORT_DAG_ID, asset_uri

with DAG(
    dag_id=REPORT_DAG_ID,
    description="A Markdown report of each new gold.recommendations run",
    schedule=[Asset(name=GOLD_RECOMMENDATIONS.sql_name, uri=asset_uri(GOLD_RECOMMENDATIONS))],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["setlist", "report"],
):

    @task(task_id="write_report")
    def write_report() -> str:
        from include.serving.report import write

        return write(load_settings().lake)

    write_report()
