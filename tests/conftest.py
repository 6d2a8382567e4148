"""Shared fixtures: one warm Spark per test run (a Spark Connect server with Delta) that the tests' own session,
the jobs they run in-process and the spark-submits of ``setlist run`` and Airflow all join; tiny lakes under
tmp_path."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from include.core import log as setlist_log
from include.core.config import Settings, load_settings

# Airflow state for the whole test run lives in a throwaway folder, never in the developer's ~/airflow. Its
# metadata database is the embedded default, as a new user's (include/orchestration/metadata_db.py); as root that
# PostgreSQL runs as the postgres user, who must be able to enter the folder.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="setlist-airflow-")
os.chmod(_AIRFLOW_HOME, 0o711)
logging.getLogger("py4j").setLevel(logging.WARNING)  # its shutdown messages hit closed capture streams
setlist_log.setup()  # as every Setlist process does; tests call jobs' functions in-process
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``make test`` runs two pytest-xdist workers. Each gets whole test modules, so a module's fixtures are made
    once; the e2e tier's modules share one lake and go to one worker, first (the longest group, and mostly
    waiting on its servers; ``--no-loadscope-reorder`` keeps the collection order)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/e2e" if path.startswith("tests/e2e/") else path

    return ByModule(config, log)


@pytest.fixture()
def airflow_home() -> Iterator[Path]:
    """A new Airflow home of a test's own that the embedded metadata database can use (as root its PostgreSQL
    runs as the postgres user, who must be able to enter the folder; pytest's own temporary folders are
    private)."""
    home = Path(tempfile.mkdtemp(prefix="setlist-airflow-"))
    home.chmod(0o711)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        lake=str(tmp_path_factory.mktemp("lake")), spark_master="local[2]", shuffle_partitions=2, driver_memory="3g"
    )


@pytest.fixture(scope="session")
def spark_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The run's Spark Connect server; its URL and token are in the environment of everything started
    afterwards (``SETLIST_SPARK_REMOTE``), so ``setlist run`` and Airflow submit to it too. Stopped at the end."""
    from include.orchestration import spark_server as server

    running = server.start(settings, log_file=tmp_path_factory.mktemp("spark") / "spark-connect.log")
    client = running.client_env()
    saved = {k: os.environ.get(k) for k in client}
    os.environ.update(client)
    yield client
    server.stop_process(running.proc)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def spark(settings: Settings, spark_server: dict[str, str]) -> Iterator[SparkSession]:
    from include.lake.spark import fit_to_input, get_spark

    session = get_spark("setlist-tests", settings.with_overrides(spark_remote=spark_server["SETLIST_SPARK_REMOTE"]))
    fit_to_input(session, 0, settings)  # tiny inline data runs interpreted, as a job on a small input does
    yield session
    session.stop()
