"""The environment Setlist gives Airflow's processes."""

from __future__ import annotations

import pytest

from include.core.config import load_settings
from include.orchestration.airflow_env import airflow_env

pytestmark = pytest.mark.unit
CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"


def test_the_metadata_database_is_sqlite_under_the_home_unless_setlist_names_one():
    url = "postgresql+psycopg2://airflow:pw@127.0.0.1:5432/airflow"
    inherited = {CONN: "sqlite:////elsewhere.db", "AIRFLOW_HOME": "/h"}
    # Setlist's own setting wins over an inherited Airflow variable; an inherited one wins over the default
    assert airflow_env(load_settings(env={"SETLIST_AIRFLOW_DB_URL": url}), inherited)[CONN] == url
    assert airflow_env(load_settings(env={}), inherited)[CONN] == "sqlite:////elsewhere.db"
    assert airflow_env(load_settings(env={}), {"AIRFLOW_HOME": "/h"})[CONN] == "sqlite:////h/airflow.db"
