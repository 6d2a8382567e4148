"""The environment in which Setlist runs Airflow and spark-submit with embedded defaults (``local[*]``; the
metadata database is :mod:`include.orchestration.metadata_db`'s, whose connection the commands that run Airflow
add); ``SETLIST_AIRFLOW_DB_URL`` points Airflow at a database of the user's own.

Reads settings and the current environment; writes nothing. Values already set by the user win, so
a PostgreSQL metadata database or a real Spark master is configuration only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from include.core.config import PROJECT_ROOT, Settings, is_loopback_cluster


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", str(PROJECT_ROOT / ".airflow")))


def spark_home() -> str | None:
    """pip's pyspark, a complete Spark home (spark-submit and spark-class find their jars through it); found
    without importing pyspark, which the DAG files must not do at parse time."""
    spec = importlib.util.find_spec("pyspark")
    return spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None


def spark_connection(settings: Settings) -> str:
    """Where the DAG's Spark tasks go: the warm Spark Connect server in connect mode (when one is running),
    else the master each task's own driver runs on."""
    if settings.spark_mode == "connect" and settings.spark_remote:
        return settings.spark_remote
    return settings.spark_master


def airflow_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for marker in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE"):  # a parent's Spark Connect session, not theirs
        env.pop(marker, None)
    home = env.get("AIRFLOW_HOME") or str(PROJECT_ROOT / ".airflow")
    bin_dir = str(Path(sys.executable).parent)
    defaults = {
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": f"{home}/logs",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": spark_connection(settings)}),
    }
    if spark_dir := spark_home():
        defaults["SPARK_HOME"] = spark_dir
    if settings.spark_master.startswith("local") or is_loopback_cluster(settings.spark_master):
        defaults["SPARK_LOCAL_IP"] = "127.0.0.1"  # a driver of a loopback master listens on loopback only
    for key, value in defaults.items():
        if not env.get(key):
            env[key] = value
    if settings.airflow_db_url:  # Setlist's own setting wins over an inherited Airflow variable
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = settings.airflow_db_url.get_secret_value()
    env["SETLIST_LAKE"] = settings.lake
    env["SETLIST_JARS_DIR"] = settings.jars_dir
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")  # spark-submit from this venv
    return env
