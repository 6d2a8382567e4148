"""Builds the Spark session every Setlist job and command uses (Delta enabled, settings applied).

Two kinds of session, one API: a Spark Connect client of a warm Spark (``spark-submit --remote``, or
``settings.spark_remote`` in-process), or a classic driver of its own (``spark-submit --master``, or
``settings.spark_master`` in-process). Job code uses only what both offer (no JVM handles, no SparkContext).

Reads: the Delta jar folder (classic sessions). Writes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import cast

import grpc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.connect.client import DefaultChannelBuilder
from pyspark.sql.connect.session import SparkSession as ConnectSession

from include.core import credentials
from include.core.config import Settings
from include.lake.spark_conf import session_conf, spark_conf

# Set by pyspark once a process has a Spark Connect session; a child process that inherits them would build
# a Connect session where it asked for a classic one.
CONNECT_MARKERS = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")
TOKEN_VAR = "SPARK_CONNECT_AUTHENTICATE_TOKEN"  # read by Spark's Connect server and by its Python client alike


def client_token() -> str | None:
    """The token a client presents: the environment's, else the stored one of ``setlist spark-server``."""
    if os.environ.get(TOKEN_VAR):
        return os.environ[TOKEN_VAR]
    stored = credentials.password_file("spark-connect")
    return stored.read_text(encoding="utf-8").strip() if stored.is_file() else None


class LoopbackChannel(DefaultChannelBuilder):
    """A Connect channel to a server on this machine that sends the token as a plain ``authorization`` header.

    PySpark's own builder attaches the token as gRPC call credentials, and gRPC then starts a Python thread for
    every call to add the header; one such start hung a job for 20 minutes (CI of stop 41, in a GX query). The
    header is the same; loopback needs no TLS (gRPC's local credentials, as PySpark uses for localhost).
    """

    @property
    def applies(self) -> bool:
        """Whether the URL names a server on loopback reached without TLS and with a token."""
        return self.host == "localhost" and not self.use_ssl and self.token is not None

    def toChannel(self) -> grpc.Channel:
        return self._secure_channel(self.endpoint, grpc.local_channel_credentials())

    def metadata(self) -> list[tuple[str, str]]:
        return [*super().metadata(), ("authorization", f"Bearer {self.token}")]


def submitted_remote() -> str | None:
    """The Spark Connect URL ``spark-submit --remote`` started this process with (it passes its settings to
    the Python client as JSON in ``PYSPARK_REMOTE_INIT_CONF_<i>``), else None."""
    for i in range(int(os.environ.get("PYSPARK_REMOTE_INIT_CONF_LEN", "0"))):
        remote = json.loads(os.environ.get(f"PYSPARK_REMOTE_INIT_CONF_{i}", "{}")).get("spark.remote")
        if remote:
            return str(remote)
    return None


def remote_url(settings: Settings) -> str | None:
    """Where this process's session lives: the ``--remote`` of spark-submit; under a classic spark-submit,
    its own driver (None); started from Python, ``settings.spark_remote`` in connect mode (None: a driver of
    its own on ``settings.spark_master``)."""
    remote = submitted_remote()
    if remote or "PYSPARK_GATEWAY_PORT" in os.environ:
        return remote
    if settings.spark_mode == "connect" and settings.spark_remote:
        return settings.spark_remote
    return None


def get_spark(
    app_name: str, settings: Settings, log_level: str = "WARN", extra: Mapping[str, str] | None = None
) -> SparkSession:
    """The active session, or a new one with Setlist's configuration (plus ``extra`` settings).

    A Connect client sets only its session's SQL settings (the server was started with the rest); its
    token comes from ``SPARK_CONNECT_AUTHENTICATE_TOKEN``. Under spark-submit the master and jars come from
    the submit command (the DAG's connection); started from Python, the session uses ``settings.spark_master``.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    remote = remote_url(settings)
    if remote:
        secret = client_token()
        if secret:
            os.environ[TOKEN_VAR] = secret
        channel = LoopbackChannel(remote)
        if channel.applies:
            os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # as pyspark marks a Connect process itself
            spark = cast(SparkSession, ConnectSession.builder.channelBuilder(channel).getOrCreate())
        else:
            spark = SparkSession.builder.remote(remote).getOrCreate()
        for key, value in {**session_conf(settings), **(extra or {})}.items():
            spark.conf.set(key, value)
        return spark
    for inherited in CONNECT_MARKERS:  # a Connect client's markers, inherited from a parent process
        os.environ.pop(inherited, None)
    # PySpark starts its Python workers with $PYSPARK_PYTHON (else "python3" from PATH, which may lack numpy and
    # pyarrow), whatever spark.pyspark.python says.
    os.environ.setdefault("PYSPARK_PYTHON", settings.pyspark_python)
    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit
        builder = builder.master(settings.spark_master)
        if settings.spark_master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # read by the JVM before any conf
    for key, value in {**spark_conf(settings), **(extra or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    return spark


# Spark compiles Java for every new query plan: worth it over millions of rows, but on a small day the
# compiling is most of a query's time (BENCHMARKS.md: about a fifth of each job on a 10,000-event day).
INTERPRETED = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


def fit_to_input(spark: SparkSession, rows: int, settings: Settings) -> bool:
    """Run the session's later queries interpreted when the job's input has fewer than
    ``settings.codegen_min_rows`` rows (0: always compiled); returns whether it does."""
    small = rows < settings.codegen_min_rows
    for key, value in INTERPRETED.items():
        if small:
            spark.conf.set(key, value)
        else:
            spark.conf.unset(key)
    return small


def parallelism(spark: SparkSession) -> int:
    """The cluster's default parallelism (cores of all executors), asked through the DataFrame API: a range
    without a partition count gets exactly that many partitions, in Connect and classic sessions alike."""
    from pyspark.sql import functions as F

    row = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("p")).agg(F.countDistinct("p")).first()
    return max(1, int(row[0])) if row else 1


def cached(df: DataFrame) -> DataFrame:
    """``df`` computed now and kept (memory, then disk) for the queries that reuse it: a local checkpoint,
    whose later plans start from the stored rows. Over Spark Connect that makes every later query on it a
    short plan (``cache()`` there plans the whole query again each time), and the rows are released with
    the session, so a long-lived server never keeps a finished job's data. A lost executor loses them
    too: the task fails and Airflow retries it."""
    return df.localCheckpoint()
