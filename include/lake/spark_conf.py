"""Spark configuration shared by in-process sessions and by ``spark-submit`` from the DAG.

Reads nothing but the settings and the jar folder listing; imports no Spark, so DAG files may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from include.core.config import PROJECT_ROOT, Settings

JARS_COMMAND = "make jars"
LOG4J_CONF = PROJECT_ROOT / "conf" / "log4j2.properties"
# Spark compiles new classes for every query plan; the JIT's second tier (C2) then compiled thousands of
# them that ran a handful of times, which cost a warm driver on 2 cores about a third of its CPU (BENCHMARKS.md).
# Ten times the default thresholds keep C2 for code that is really hot (the engine's own loops).
JIT_OPTIONS = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=20000"
    " -XX:Tier4CompileThreshold=75000 -XX:Tier4BackEdgeThreshold=400000"
)


# A Connect client's spark-submit runs two short JVMs (the launcher, then SparkSubmit, which only starts the job's
# Python and waits for it): C1 alone and class-data-sharing archives of their classes (`make jars`) make a submit
# take about 1.2 s and 1.6 s of CPU instead of 2.8 s and 4.9 s (bench_client_jvm.py). Never for a driver: it needs C2.
CLIENT_JIT = "-XX:TieredStopAtLevel=1"
CDS_DIR = "cds"
CLIENT_JVMS = {"SPARK_LAUNCHER_OPTS": "launcher.jsa", "SPARK_SUBMIT_OPTS": "submit.jsa"}


def client_jvm_env(jars_dir: str, base: Mapping[str, str]) -> dict[str, str]:
    """The JVM options of a Connect client's spark-submit, after any the environment ``base`` already has. An
    archive that is missing or was made for other jars is ignored by the JVM."""
    env = {}
    for var, archive in CLIENT_JVMS.items():
        own = f"{CLIENT_JIT} -XX:SharedArchiveFile={Path(jars_dir) / CDS_DIR / archive} -Xlog:cds=off,cds+dynamic=off"
        env[var] = f"{base.get(var, '')} {own}".strip()
    return env


class MissingJarsError(RuntimeError):
    """The Delta jars have not been resolved into the jar folder."""


def delta_jars(settings: Settings) -> list[str]:
    """The Delta jar paths, or a one-line error naming the command that fetches them."""
    jars = settings.jar_paths()
    if not any("delta-spark" in j for j in jars):
        raise MissingJarsError(
            f"Delta jars not found in {settings.jars_dir}: run `{JARS_COMMAND}` (Maven resolves them once)."
        )
    return jars


# The settings a Spark Connect client sets on its own session; everything else belongs to the server's driver.
SESSION_KEYS = ("spark.sql.shuffle.partitions", "spark.sql.session.timeZone")


def session_conf(settings: Settings) -> dict[str, str]:
    """The per-session subset of :func:`spark_conf` (what a Connect client may set)."""
    conf = spark_conf(settings, jars="")
    return {k: conf[k] for k in SESSION_KEYS}


def spark_conf(settings: Settings, jars: str | None = None) -> dict[str, str]:
    """Every Spark setting Setlist needs; the same for local[*] and a real cluster.

    ``jars`` defaults to the resolved jar list (checked to exist); the DAG passes a glob instead,
    which spark-submit expands, so that parsing the DAG touches no file.
    """
    conf = {
        "spark.jars": jars if jars is not None else ",".join(delta_jars(settings)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(PROJECT_ROOT / ".build" / "spark-warehouse"),
        # Kryo: ALS ships many small factor blocks between stages; Java serialization is slower and larger.
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.driver_memory,
        "spark.pyspark.python": settings.pyspark_python,
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile=file:{LOG4J_CONF} {JIT_OPTIONS}",
        # A cluster's executors run the same generated classes (no log4j file: it is on this machine only).
        "spark.executor.extraJavaOptions": JIT_OPTIONS,
        # Compiled query classes are reused by their code; the default cache of 100 is smaller than one day's runs.
        "spark.sql.codegen.cache.maxEntries": "2000",
        # One BLAS thread per task: Spark already runs a task per core (ALS's native BLAS, numpy in UDFs).
        "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
        # ALS checkpoints its factor lineage here; a long-lived (Connect) driver deletes them once unused.
        "spark.checkpoint.dir": settings.checkpoint_dir,
        "spark.cleaner.referenceTracking.cleanCheckpoints": "true",
    }
    if settings.spark_master.startswith("local"):
        # A local driver, its block manager and its UI listen on loopback only.
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.host"] = "127.0.0.1"
    return conf
