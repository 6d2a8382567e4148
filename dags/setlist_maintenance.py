"""Weekly Delta maintenance: OPTIMIZE the last week's partitions (gold.recommendations Z-ordered by user
for lookups) and VACUUM every lake table, keeping at least 7 days of time travel.

One Spark job (``spark_jobs/maintain.py``) submitted like the nightly ones. This file only wires tasks.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from include.core.config import load_settings
from include.orchestration.dag_spec import DEFAULT_ARGS, MAINTENANCE_DAG_ID, MAINTENANCE_JOB, submit_kwargs
from include.orchestration.dag_tasks import package_code, resolve_run_date
from include.orchestration.spark_operator import SparkJobOperator

settings = load_settings()

with DAG(
    dag_id=MAINTENANCE_DAG_ID,
    description="OPTIMIZE and VACUUM the lake's Delta tables",
    schedule="0 5 * * 0",  # Sundays 05:00 UTC, after the nightly run
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["setlist", "spark", "delta", "maintenance"],
):
    [resolve_run_date(), package_code()] >> SparkJobOperator(**submit_kwargs(MAINTENANCE_JOB, settings))
