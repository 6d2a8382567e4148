"""Nightly Setlist pipeline: landing CSV -> bronze -> silver -> gold -> ALS -> gold.recommendations.

Each step is a Spark job submitted with ``spark-submit`` (``SparkJobOperator``) through the ``spark_default``
connection: a warm Spark Connect server (``--remote``) or a master of its own; shared code ships with
``--py-files``. Scheduled nightly at ``SETLIST_NIGHTLY_HOUR`` (UTC) for the day just
ended; the run date is the ``run_date`` param, else the logical date (``resolve_run_date``). Training and
recommendations run behind the ``newest_day`` gate (param ``train``): a backfill trains once, on its newest
day. After ``train_als``, ``tuning_due`` publishes the ``ops.tuning_due`` asset (the tuning DAG runs on it)
when the model fell clearly below its tuned settings. This file only wires tasks: the logic lives in
``spark_jobs/`` and ``include/``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Asset, Param, task

from include.core.config import load_settings
from include.orchestration.dag_spec import (
    DAG_ID,
    DEFAULT_ARGS,
    JOBS,
    OUTLETS,
    TRAIN_GATE_TASK,
    TRAINING_JOBS,
    TUNING_DUE,
    TUNING_DUE_TASK,
    asset_uri,
    landing_timeout_s,
    nightly_schedule,
    param_schemas,
    submit_kwargs,
)
from include.orchestration.dag_tasks import package_code, resolve_run_date_once_landed
from include.orchestration.spark_operator import SparkJobOperator

settings = load_settings()

with DAG(
    dag_id=DAG_ID,
    description="Landing CSV to gold.recommendations on Delta Lake",
    schedule=nightly_schedule(settings),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={name: Param(**schema) for name, schema in param_schemas(settings).items()},
    tags=["setlist", "spark", "delta"],
) as dag:

    @task(task_id=TUNING_DUE_TASK, outlets=[Asset(name=TUNING_DUE[0], uri=TUNING_DUE[1])])
    def tuning_due(**context: Any) -> None:
        from airflow.sdk.exceptions import AirflowSkipException

        from include.orchestration.dag_spec import tuning_due_event

        if not tuning_due_event(context):  # skipped: no asset event, no tuning run
            raise AirflowSkipException("the model is within the tuned settings' reach: no tuning run due")

    @task.short_circuit(task_id=TRAIN_GATE_TASK)
    def newest_day(**context: Any) -> bool:
        from include.orchestration.dag_spec import train_gate

        return train_gate(context)

    # the run date, once the day's landing holds its completeness marker (a reschedule-mode sensor)
    landed = resolve_run_date_once_landed.override(timeout=landing_timeout_s(settings))()
    previous: Any = [landed, package_code()]
    for job in JOBS:
        if job.task_id == TRAINING_JOBS[0]:
            gate = newest_day()
            previous >> gate
            previous = gate
        outlets = [Asset(name=t.sql_name, uri=asset_uri(t)) for t in OUTLETS.get(job.task_id, ())]
        submit = SparkJobOperator(**submit_kwargs(job, settings), outlets=outlets)
        previous >> submit
        previous = submit
        if job.task_id == TRAINING_JOBS[0]:
            submit >> tuning_due()  # beside recommend: whether the next tuning run is due at once
