"""Builds the Spark session every Setlist job and command uses (Delta enabled, settings applied).

Reads: the Delta jar folder. Writes: nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pyspark.sql import SparkSession

from include.config import Settings
from include.spark_conf import spark_conf


def get_spark(
    app_name: str, settings: Settings, log_level: str = "WARN", extra: Mapping[str, str] | None = None
) -> SparkSession:
    """The active session, or a new one with Setlist's configuration (plus ``extra`` settings).

    Under ``spark-submit`` the master and jars come from the submit command (the DAG's connection);
    started from Python, the session uses ``settings.spark_master``.
    """
    conf = {**spark_conf(settings), **(extra or {})}
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit
        builder = builder.master(settings.spark_master)
        if settings.spark_master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # read by the JVM before any conf
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    return spark
