"""The DAG's Spark tasks with a real spark-submit: a job that stops for a reason a retry cannot change fails its
task at once (Airflow's ``AirflowFailException``); any other failure stays retryable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from include.core.config import load_settings
from include.lake import jobs
from include.orchestration.dag_spec import JOBS, submit_kwargs
from include.orchestration.spark_operator import SparkJobOperator

pytestmark = pytest.mark.integration


def _hook(monkeypatch, application: str, args: list[str]):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[1]"}')
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])  # as airflow_env
    kwargs = submit_kwargs(JOBS[0], load_settings(env={}))
    kwargs.update(application=application, application_args=args, py_files=None)
    return SparkJobOperator(**kwargs)._get_hook()


def test_an_invalid_argument_fails_the_task_without_retries(monkeypatch, tmp_path):
    hook = _hook(monkeypatch, JOBS[0].application, [JOBS[0].module, "--run-date", "2026-13-01"])
    with pytest.raises(AirflowFailException, match="a retry cannot change") as failed:
        hook.submit(JOBS[0].application)
    assert hook._submit_sp.returncode == jobs.EXIT_USAGE
    assert "Error code is: 2" in str(failed.value)


@pytest.mark.parametrize(("code", "final"), [(jobs.EXIT_DATA, True), (jobs.EXIT_CONFLICT, False)])
def test_only_the_final_exit_codes_skip_the_retries(monkeypatch, tmp_path, code, final):
    app = tmp_path / "job.py"
    app.write_text("import sys\nsys.exit(int(sys.argv[1]))\n")
    hook = _hook(monkeypatch, str(app), [str(code)])
    with pytest.raises(AirflowException, match=f"Error code is: {code}") as failed:
        hook.submit(str(app))
    assert isinstance(failed.value, AirflowFailException) == final
