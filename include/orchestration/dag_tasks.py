"""The Python tasks both Setlist DAGs start with; the DAG files only wire them.

``package_code`` zips the shared code for ``spark-submit --py-files``; ``resolve_run_date`` decides the
day a run processes, which every Spark task reads from its XCom. The nightly DAG's variant,
``resolve_run_date_once_landed``, is a sensor in reschedule mode (no worker slot held while it waits): it
returns the day only once the day's landing is complete (its completeness marker), and fails with one line
naming what is missing after ``SETLIST_LANDING_WAIT_MINUTES``.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import PokeReturnValue, task

from include.orchestration.dag_spec import LANDING_POKE_S, PY_FILES_TASK, RUN_DATE_TASK

log = logging.getLogger(__name__)


@task(task_id=PY_FILES_TASK)
def package_code() -> str:
    from include.core.packaging import build_py_files

    return build_py_files()


def _run_date(context: dict[str, Any], queued_day: bool = False) -> str:
    from airflow.sdk.exceptions import AirflowFailException

    from include.core.config import ConfigError
    from include.core.log import setup
    from include.orchestration.dag_spec import run_date_of

    setup()
    try:
        when = context.get("logical_date")
        if when is None and queued_day:  # an asset-triggered run: the day it was queued
            when = context["dag_run"].run_after
        return run_date_of(context["params"], when)
    except ConfigError as exc:  # a retry cannot fix the run's input: fail now, with the message alone
        raise AirflowFailException(str(exc)) from None


@task(task_id=RUN_DATE_TASK)
def resolve_run_date(**context: Any) -> str:
    day = _run_date(context)
    log.info("%s: %s", RUN_DATE_TASK, day)
    return day


@task(task_id=RUN_DATE_TASK)
def resolve_newest_date(**context: Any) -> str:
    """The run date of a run that works on the newest data up to a day (the tuning run): the ``run_date`` param,
    else the logical date, else the day an asset-triggered run was queued."""
    day = _run_date(context, queued_day=True)
    log.info("%s: %s", RUN_DATE_TASK, day)
    return day


@task.sensor(task_id=RUN_DATE_TASK, mode="reschedule", poke_interval=LANDING_POKE_S)
def resolve_run_date_once_landed(**context: Any) -> PokeReturnValue:
    import datetime as dt

    from airflow.sdk.exceptions import AirflowFailException

    from include.core.config import load_settings
    from include.orchestration.dag_spec import landing_missing

    day = _run_date(context)
    settings = load_settings()
    missing = landing_missing(settings, day)
    if missing is None:
        log.info("%s: %s", RUN_DATE_TASK, day)
        return PokeReturnValue(is_done=True, xcom_value=day)
    started = context["dag_run"].start_date or dt.datetime.now(dt.UTC)
    waited = (dt.datetime.now(dt.UTC) - started).total_seconds() / 60
    if waited >= settings.landing_wait_minutes:
        raise AirflowFailException(
            f"landing for {day} is not complete after {waited:.0f} min: {missing} is missing"
            f" (SETLIST_LANDING_WAIT_MINUTES={settings.landing_wait_minutes})"
        )
    log.info("%s: waiting for %s (%.0f of %d min)", RUN_DATE_TASK, missing, waited, settings.landing_wait_minutes)
    return PokeReturnValue(is_done=False)
