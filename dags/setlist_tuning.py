"""Weekly ALS tuning: search the lake's model settings within a time budget; the nightly fit uses what it finds.

One Spark job (``spark_jobs/tune_als.py``) submitted like the nightly ones, on the newest gold day up to the run
date. Runs on Saturdays, when a nightly run finds its model clearly below the tuned settings (the
``ops.tuning_due`` asset), and from the UI with the ``tuning_seconds`` budget param. This file only wires tasks.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param

from include.core.config import load_settings
from include.orchestration.dag_spec import (
    DEFAULT_ARGS,
    TUNING_DAG_ID,
    TUNING_DUE,
    TUNING_JOB,
    TUNING_SCHEDULE,
    param_schemas,
    submit_kwargs,
)
from include.orchestration.dag_tasks import package_code, resolve_newest_date
from include.orchestration.spark_operator import SparkJobOperator

settings = load_settings()

with DAG(
    dag_id=TUNING_DAG_ID,
    description="Search the ALS settings within a budget; the nightly fit uses them",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(TUNING_SCHEDULE, timezone="UTC"),
        assets=[Asset(name=TUNING_DUE[0], uri=TUNING_DUE[1])],
    ),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={name: Param(**schema) for name, schema in param_schemas(settings, TUNING_JOB).items()},
    tags=["setlist", "spark", "tuning"],
):
    [resolve_newest_date(), package_code()] >> SparkJobOperator(**submit_kwargs(TUNING_JOB, settings))
