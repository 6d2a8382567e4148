"""How a driver joins a cluster that ``setlist spark-cluster`` started: the secret in a file, never argv."""

from __future__ import annotations

import stat

import pytest

from include.core.config import load_settings
from include.orchestration import spark_cluster, spark_server

pytestmark = pytest.mark.unit


def test_a_loopback_cluster_gets_the_secret_through_a_private_properties_file(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv(spark_cluster.SECRET_VAR, "unit-secret")
    settings = load_settings(env={"SETLIST_SPARK_MASTER": "spark://127.0.0.1:7077"})
    command = spark_server.server_command(settings, 15002)
    properties = command[command.index("--properties-file") + 1]
    assert not [arg for arg in command if "unit-secret" in arg]
    with open(properties, encoding="utf-8") as f:
        text = f.read()
    assert text == "spark.authenticate true\nspark.authenticate.secret unit-secret\n"
    assert stat.S_IMODE(tmp_path.joinpath("setlist", "spark-cluster-driver.properties").stat().st_mode) == 0o600
    # any other master (a real cluster, local) is left to its own configuration
    for master in ("spark://spark-master:7077", "local[2]"):
        other = load_settings(env={"SETLIST_SPARK_MASTER": master})
        assert "--properties-file" not in spark_server.server_command(other, 15002)
