"""The Python tasks both Setlist DAGs start with; the DAG files only wire them.

``package_code`` zips the shared code for ``spark-submit --py-files``; ``resolve_run_date`` decides the
day a run processes, which every Spark task reads from its XCom.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task

from include.orchestration.dag_spec import PY_FILES_TASK, RUN_DATE_TASK

log = logging.getLogger(__name__)


@task(task_id=PY_FILES_TASK)
def package_code() -> str:
    from include.core.packaging import build_py_files

    return build_py_files()


@task(task_id=RUN_DATE_TASK)
def resolve_run_date(**context: Any) -> str:
    from airflow.sdk.exceptions import AirflowFailException

    from include.core.config import ConfigError
    from include.core.log import setup
    from include.orchestration.dag_spec import run_date_of

    setup()

    try:
        day = run_date_of(context["params"], context.get("logical_date"))
    except ConfigError as exc:  # a retry cannot fix the run's input: fail now, with the message alone
        raise AirflowFailException(str(exc)) from None
    log.info("%s: %s", RUN_DATE_TASK, day)
    return day
