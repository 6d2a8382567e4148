"""A SQL endpoint for BI clients: Spark's Thrift server (HiveServer2 protocol) over the lake's tables.

Reads the lake's Delta tables, registered by name (``gold.recommendations``) over their locations when the
server starts and again every ``REGISTER_EVERY_S`` seconds, so tables created later appear (registration is
idempotent and lives in memory: a restart simply registers again). Every query reads one committed Delta
snapshot. The server writes nothing to the lake, and clients cannot either: ``ReadOnlyExtensions`` (a Spark
check rule in ``jars/sql-auth``) refuses their statements that would change anything. It listens on
127.0.0.1 only and needs a login: user ``SETLIST_SQL_USER`` (default ``setlist``), password
``SETLIST_SQL_PASSWORD`` or, when that is unset, one generated on first start, stored outside the repository
(``~/.config/setlist/sql-password``, mode 600) and printed that once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from include.core import credentials
from include.core.config import PROJECT_ROOT, ConfigError, Settings, check_range

log = logging.getLogger(__name__)

DEFAULT_PORT = 10000
DEFAULT_USER = "setlist"
REGISTER_EVERY_S = 30.0
AUTH_CLASS = "dev.setlist.sql.PasswordAuthenticator"
READ_ONLY_CLASS = "dev.setlist.sql.ReadOnlyExtensions"  # refuses clients' writes (jars/sql-auth)


def auth_jar(settings: Settings) -> Path:
    """The login check (``jars/sql-auth``), compiled by ``make jars`` against pyspark's Hive classes."""
    return Path(settings.jars_dir) / "sql-auth" / "setlist-sql-auth.jar"


def sql_password() -> str:
    return credentials.password("sql", "SETLIST_SQL_PASSWORD")


def server_conf(settings: Settings, port: int) -> dict[str, str]:
    """Spark settings of the server: loopback, the login check, read-only for clients, no Spark UI (it would
    have no login)."""
    jar = auth_jar(settings)
    if not jar.is_file():
        raise ConfigError(f"sql-server: the login check {jar} is missing: run `make jars`")
    from include.lake.spark_conf import delta_jars, spark_conf

    hive = {
        "hive.server2.thrift.bind.host": "127.0.0.1",
        "hive.server2.thrift.port": str(port),
        "hive.server2.transport.mode": "binary",
        "hive.server2.authentication": "CUSTOM",
        "hive.server2.custom.authentication.class": AUTH_CLASS,
        "hive.server2.enable.doAs": "false",
    }
    # The login check builds its own HiveConf, which reads only hive-site.xml and JVM system properties.
    derby = PROJECT_ROOT / ".build" / "derby"  # Hive's scratch metastore and derby.log, never the lake
    base = spark_conf(settings)
    java_options = base["spark.driver.extraJavaOptions"] + "".join(
        f" -D{k}={v}" for k, v in {**hive, "derby.system.home": str(derby)}.items()
    )
    jars = [*delta_jars(settings), str(jar)]
    extensions = base["spark.sql.extensions"] + "," + READ_ONLY_CLASS
    return {
        "spark.sql.extensions": extensions,
        "spark.jars": ",".join(jars),
        # Client sessions open on Thrift threads, which load classes from the JVM's own class path only.
        "spark.driver.extraClassPath": os.pathsep.join(jars),
        "spark.ui.enabled": "false",
        "spark.driver.extraJavaOptions": java_options,
        **{f"spark.hadoop.{k}": v for k, v in hive.items()},
    }


def jdbc_url(port: int) -> str:
    return f"jdbc:hive2://127.0.0.1:{port}/default"


def serve(settings: Settings, port: int = DEFAULT_PORT) -> None:
    """Start the server and block until SIGINT or SIGTERM, then stop it."""
    check_range("--port", port, 1024, 65535)
    os.environ["SETLIST_SQL_PASSWORD"] = sql_password()  # the JVM started below reads it
    os.environ.setdefault("SETLIST_SQL_USER", DEFAULT_USER)
    from include.lake import delta_io, gold_state
    from include.lake.spark import get_spark

    # The Thrift server runs in this process's own driver (its JVM hosts the endpoint), never a Connect client.
    own = settings.with_overrides(spark_mode="submit")
    spark = get_spark("setlist-sql-server", own, log_level="WARN", extra=server_conf(settings, port))
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    jvm.dev.setlist.sql.ReadOnlyExtensions.exempt(spark._jsparkSession)  # type: ignore[attr-defined]
    alpha = settings.als_value("alpha")
    registered = delta_io.register_tables(spark, settings.lake, views=gold_state.views(spark, settings.lake, alpha))
    jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        spark._jsparkSession.sqlContext()  # type: ignore[attr-defined]
    )
    log.info("SQL endpoint listening at %s (user %s)", jdbc_url(port), os.environ["SETLIST_SQL_USER"])
    log.info("registered %d tables: %s", len(registered), ", ".join(registered))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(REGISTER_EVERY_S):
        delta_io.register_tables(spark, settings.lake, views=gold_state.views(spark, settings.lake, alpha))
    log.info("SQL endpoint stopping")
    spark.stop()
