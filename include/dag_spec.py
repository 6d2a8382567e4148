"""What the nightly DAG submits: the job list, the spark-submit settings and the templated arguments.

Reads settings from the environment (cheap: no Spark, no I/O) so the DAG file stays thin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from include.config import ALS_MODES, MODEL_SETTINGS, PROJECT_ROOT, RANGES, Settings
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


def application_args(job: SparkJob, settings: Settings) -> list[str]:
    """Arguments passed to the job's ``main``; run date and model settings are Jinja-templated params."""
    args = ["--run-date", RUN_DATE_TEMPLATE, "--lake", settings.lake, "--run-id", "{{ run_id }}"]
    if job.model_args:
        for name in MODEL_SETTINGS:
            args += ["--" + name.replace("_", "-"), "{{ params." + name + " }}"]
    return args


def submit_conf(settings: Settings) -> dict[str, str]:
    """spark-submit ``--conf`` values; the master comes from the ``spark_default`` connection instead."""
    conf = spark_conf(settings, jars=f"{settings.jars_dir}/*.jar")
    return {k: v for k, v in conf.items() if k != "spark.driver.memory"}


def param_schemas(settings: Settings) -> dict[str, dict[str, Any]]:
    """JSON-schema of each DAG param, with the same allowed values the settings check enforces."""
    schemas: dict[str, dict[str, Any]] = {
        "run_date": {
            "default": None,
            "type": ["null", "string"],
            "format": "date",
            "description": "YYYY-MM-DD; default: the logical date",
        },
        "als_mode": {"default": settings.als_mode, "enum": list(ALS_MODES)},
    }
    for name in MODEL_SETTINGS[1:]:
        low, high = RANGES[name]
        value = getattr(settings, name)
        kind = "integer" if isinstance(value, int) else "number"
        schemas[name] = {"default": value, "type": kind, "minimum": low, "maximum": high}
    return schemas
