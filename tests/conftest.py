"""Shared fixtures: one Spark session per test run (Delta enabled), tiny lakes under tmp_path."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from include.config import Settings, load_settings

# Airflow state for the whole test run lives in a throwaway folder, never in the developer's ~/airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="setlist-airflow-")
logging.getLogger("py4j").setLevel(logging.WARNING)  # its shutdown messages hit closed capture streams
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        lake=str(tmp_path_factory.mktemp("lake")), spark_master="local[2]", shuffle_partitions=2, driver_memory="2g"
    )


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[SparkSession]:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from include.spark import get_spark

    session = get_spark("setlist-tests", settings)
    yield session
    session.stop()
