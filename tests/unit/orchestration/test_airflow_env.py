"""The environment Setlist gives Airflow's processes, and which metadata database they use."""

from __future__ import annotations

import pytest

from include.core.config import ConfigError, load_settings
from include.core.processes import free_port
from include.orchestration import metadata_db
from include.orchestration.airflow_env import airflow_env

pytestmark = pytest.mark.unit
CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"


def test_the_metadata_database_is_the_embedded_postgresql_unless_one_is_configured():
    url = "postgresql+psycopg2://airflow:pw@127.0.0.1:5432/airflow"
    inherited = {CONN: "sqlite:////elsewhere.db", "AIRFLOW_HOME": "/h"}
    # Setlist's own setting wins over an inherited Airflow variable; an inherited one is used as it is
    assert airflow_env(load_settings(env={"SETLIST_AIRFLOW_DB_URL": url}), inherited)[CONN] == url
    assert airflow_env(load_settings(env={}), inherited)[CONN] == "sqlite:////elsewhere.db"
    assert metadata_db.configured(load_settings(env={"SETLIST_AIRFLOW_DB_URL": url}), inherited) == url
    assert metadata_db.configured(load_settings(env={}), inherited) == "sqlite:////elsewhere.db"
    # nothing configured: the embedded database, whose connection the commands that run Airflow add
    assert CONN not in airflow_env(load_settings(env={}), {"AIRFLOW_HOME": "/h"})
    assert metadata_db.configured(load_settings(env={}), {"AIRFLOW_HOME": "/h"}) is None


def test_a_configured_database_that_does_not_answer_is_one_line_naming_the_setting():
    closed = free_port()
    url = f"postgresql+psycopg2://airflow:secret-pw@127.0.0.1:{closed}/airflow"
    with pytest.raises(ConfigError) as refused:
        metadata_db.check_reachable(url, "SETLIST_AIRFLOW_DB_URL")
    message = str(refused.value)
    assert message.startswith(
        f"SETLIST_AIRFLOW_DB_URL: cannot reach Airflow's metadata database postgresql+psycopg2://127.0.0.1:{closed}"
        "/airflow: "
    )
    assert "secret-pw" not in message and "\n" not in message
    with pytest.raises(ConfigError, match="SQLite database's folder /no/such does not exist"):
        metadata_db.check_reachable("sqlite:////no/such/airflow.db", CONN)
