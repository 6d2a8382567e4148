"""How a driver authenticates to a Spark cluster: with the configured secret (any master), with the stored one of
a cluster ``setlist spark-cluster`` runs here, or not at all; the secret in a file, never argv; a master that
does not answer is one line."""

from __future__ import annotations

import json
import os
import stat

import pytest

from include.core.config import ConfigError, load_settings
from include.core.processes import free_port
from include.orchestration import spark_cluster, spark_server

pytestmark = pytest.mark.unit


def test_a_configured_secret_goes_to_any_master_through_a_private_properties_file(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv(spark_cluster.SECRET_VAR, "unit-secret")
    for master in ("spark://127.0.0.1:7077", "spark://spark-master:7077"):
        command = spark_server.server_command(load_settings(env={"SETLIST_SPARK_MASTER": master}), 15002)
        properties = command[command.index("--properties-file") + 1]
        assert not [arg for arg in command if "unit-secret" in arg]
        with open(properties, encoding="utf-8") as f:
            assert f.read() == "spark.authenticate true\nspark.authenticate.secret unit-secret\n"
        assert stat.S_IMODE(tmp_path.joinpath("setlist", "spark-cluster-driver.properties").stat().st_mode) == 0o600


def test_without_a_secret_a_driver_authenticates_only_to_a_running_setlist_spark_cluster(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv(spark_cluster.SECRET_VAR, raising=False)
    ours = "spark://127.0.0.1:7077"
    # an unsecured loopback cluster of the user's own: nothing sent
    assert "--properties-file" not in spark_server.server_command(load_settings(env={"SETLIST_SPARK_MASTER": ours}), 1)
    stored = spark_cluster.secret()  # what `setlist spark-cluster` generated and stored
    running = tmp_path / "setlist" / "spark-cluster-running.json"
    running.write_text(json.dumps({"master": ours, "pid": os.getpid()}), encoding="utf-8")
    assert spark_cluster.driver_secret(ours) == stored
    assert spark_cluster.driver_secret("spark://127.0.0.1:7078") is None  # another master
    running.write_text(json.dumps({"master": ours, "pid": 2**22 + 1}), encoding="utf-8")  # no such process
    assert spark_cluster.driver_secret(ours) is None
    assert "--properties-file" not in spark_server.server_command(load_settings(env={}), 1)  # local[*]


def test_a_master_that_does_not_answer_is_one_line_naming_the_setting():
    master = f"spark://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError) as refused:
        spark_server.check_master(master)
    assert str(refused.value) == (
        f"SETLIST_SPARK_MASTER: the Spark master {master} does not answer; start it, or set SETLIST_SPARK_MASTER to a"
        " running master"
    )
    spark_server.check_master("local[2]")  # nothing to check
