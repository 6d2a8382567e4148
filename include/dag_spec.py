"""What the nightly DAG submits: the job list, the spark-submit settings and the templated arguments.

Reads settings from the environment (cheap: no Spark, no I/O) so the DAG file stays thin.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.config import PROJECT_ROOT, Settings
from include.spark_conf import spark_conf

DAG_ID = "setlist_nightly"
RUN_DATE_TEMPLATE = "{{ params.run_date or ds }}"
PY_FILES_TASK = "package_code"


@dataclass(frozen=True)
class SparkJob:
    task_id: str
    module: str
    model_args: bool = False

    @property
    def application(self) -> str:
        return str(PROJECT_ROOT / "spark_jobs" / f"{self.module}.py")


JOBS = (
    SparkJob("ingest_bronze", "ingest_bronze"),
    SparkJob("build_silver", "build_silver"),
    SparkJob("build_gold", "build_gold"),
    SparkJob("train_als", "train_als", model_args=True),
    SparkJob("recommend", "recommend", model_args=True),
)

MODEL_PARAMS = ("als_mode", "rank", "max_iter", "reg_param", "alpha", "top_k")


def application_args(job: SparkJob, settings: Settings) -> list[str]:
    """Arguments passed to the job's ``main``; run date and model settings are Jinja-templated params."""
    args = ["--run-date", RUN_DATE_TEMPLATE, "--lake", settings.lake, "--run-id", "{{ run_id }}"]
    if job.model_args:
        for name in MODEL_PARAMS:
            args += ["--" + name.replace("_", "-"), "{{ params." + name + " }}"]
    return args


def submit_conf(settings: Settings) -> dict[str, str]:
    """spark-submit ``--conf`` values; the master comes from the ``spark_default`` connection instead."""
    conf = spark_conf(settings, jars=f"{settings.jars_dir}/*.jar")
    return {k: v for k, v in conf.items() if k != "spark.driver.memory"}
