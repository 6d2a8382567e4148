"""What the nightly DAG submits: the job list, the spark-submit settings and the templated arguments.

Reads settings from the environment (cheap: no Spark, no I/O) so the DAG file stays thin.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from include.core.config import (
    MODEL_SETTINGS,
    PROJECT_ROOT,
    ConfigError,
    Settings,
    load_settings,
    parse_run_date,
)
from include.core.tables import GOLD_AFFINITY, GOLD_DAILY_METRICS, GOLD_POPULARITY, GOLD_RECOMMENDATIONS, Table
from include.lake.spark_conf import spark_conf
from include.orchestration.run_log import on_failure

log = logging.getLogger(__name__)

DAG_ID = "setlist_nightly"
MAINTENANCE_DAG_ID = "setlist_maintenance"
PY_FILES_TASK = "package_code"
RUN_DATE_TASK = "resolve_run_date"
RUN_DATE_TEMPLATE = "{{ ti.xcom_pull(task_ids='" + RUN_DATE_TASK + "') }}"
# Every Spark task runs in this pool: with one slot, two Spark jobs (of one run or of several) never share the
# cores. Raise the slots (``airflow pools set spark N``) on a cluster that has room for more.
SPARK_POOL = "spark"
SPARK_POOL_SLOTS = 1
TRAIN_GATE_TASK = "newest_day"
# auto: train unless this DAG already has a run for the next day (a backfill or a rerun of an old day:
# the newer run's model supersedes it); always / never: as named.
TRAIN_POLICIES = ("auto", "always", "never")
TRAINING_JOBS = ("train_als", "recommend")  # behind the gate, in this order, last in the DAG


@dataclass(frozen=True)
class SparkJob:
    task_id: str
    module: str
    model_args: bool = False
    settings_args: tuple[str, ...] = ()  # settings passed as templated params of the same name

    @property
    def application(self) -> str:
        """The file spark-submit runs: the jobs' entry point, which hands the job to a warm fork server before
        its heavy imports (``spark_jobs/__main__.py``); :attr:`entry` starts with it."""
        return str(PROJECT_ROOT / "spark_jobs" / "__main__.py")

    @property
    def entry(self) -> list[str]:
        """spark-submit's application and the arguments before the job's own: the entry point and the step."""
        return [self.application, self.module]


JOBS = (
    SparkJob("ingest_bronze", "ingest_bronze"),
    SparkJob("build_silver", "build_silver"),
    SparkJob("build_gold", "build_gold"),
    SparkJob("train_als", "train_als", model_args=True),
    SparkJob("recommend", "recommend", model_args=True),
)


MAINTENANCE_JOB = SparkJob("maintain", "maintain")
TUNING_DAG_ID = "setlist_tuning"
TUNING_JOB = SparkJob("tune_als", "tune_als", model_args=True, settings_args=("tuning_seconds",))
TUNING_SCHEDULE = "0 4 * * 6"  # Saturdays 04:00 UTC: after the nightly run, before Sunday's maintenance
# The nightly run's train_als found the model clearly below its tuned settings: the tuning DAG runs on this asset.
TUNING_DUE_TASK = "tuning_due"
TUNING_DUE = ("ops.tuning_due", "setlist://ops/tuning_due")
# Spark tasks retry after 1, then 2 minutes (a busy cluster or a transient storage error), never later than 15.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "setlist",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=15),
    "on_failure_callback": on_failure,  # one row per failed try in ops.run_log
}
REPORT_DAG_ID = "setlist_daily_report"
# The gold tables each job publishes, as Airflow assets (data-aware scheduling: the report DAG runs on the last).
OUTLETS: dict[str, tuple[Table, ...]] = {
    "build_gold": (GOLD_AFFINITY, GOLD_POPULARITY, GOLD_DAILY_METRICS),
    "recommend": (GOLD_RECOMMENDATIONS,),
}


def asset_uri(table: Table) -> str:
    """The table's asset URI, ``setlist://<layer>/<name>``: what the table is, not where this lake keeps it, so
    a lake that moves (another disk, ``s3a://``) or a second lake in the same Airflow home keeps the same
    assets (a location in the URI made the first lake's assets block every other lake's)."""
    return f"setlist://{table.layer}/{table.name}"


def submit_kwargs(job: SparkJob, settings: Settings) -> dict[str, Any]:
    """``SparkSubmitOperator`` arguments for a job: the ``spark_default`` connection, Setlist's Spark
    settings, the code zip built by the run's ``package_code`` task, and the templated job arguments."""
    return {
        "task_id": job.task_id,
        "application": job.application,
        "conn_id": "spark_default",
        "pool": SPARK_POOL,
        "conf": submit_conf(settings),
        "py_files": "{{ ti.xcom_pull(task_ids='" + PY_FILES_TASK + "') }}",
        "driver_memory": settings.driver_memory,
        "name": f"setlist-{job.task_id}",
        "application_args": application_args(job, settings),
    }


def application_args(job: SparkJob, settings: Settings) -> list[str]:
    """The entry point's arguments: the step, then its ``main``'s; run date and model settings are
    Jinja-templated params."""
    args = [job.module, "--run-date", RUN_DATE_TEMPLATE, "--lake", settings.lake, "--run-id", "{{ run_id }}"]
    if job.model_args:
        for name in MODEL_SETTINGS:
            # An unset param (null) is passed as "": the job then uses the mode's best known value.
            args += [
                "--" + name.replace("_", "-"),
                "{{ params." + name + " if params." + name + " is not none else '' }}",
            ]
    for name in job.settings_args:
        args += ["--" + name.replace("_", "-"), "{{ params." + name + " }}"]
    return args


def submit_conf(settings: Settings) -> dict[str, str]:
    """spark-submit ``--conf`` values; the master comes from the ``spark_default`` connection instead."""
    conf = spark_conf(settings, jars=f"{settings.jars_dir}/*.jar")
    return {k: v for k, v in conf.items() if k != "spark.driver.memory"}


def param_schemas(settings: Settings, job: SparkJob | None = None) -> dict[str, dict[str, Any]]:
    """JSON-schema of each DAG param: the model settings' (and ``job``'s own settings') from the settings model
    itself (same types, ranges and choices as its checks), with this deployment's values as defaults. Without
    ``job``: the nightly DAG's."""
    model = Settings.model_json_schema()["properties"]
    schemas: dict[str, dict[str, Any]] = {
        "run_date": {
            "default": None,
            "type": ["null", "string"],
            "format": "date",
            "description": "YYYY-MM-DD; default: the logical date",
        },
    }
    if job is None:
        schemas["train"] = {
            "default": "auto",
            "enum": list(TRAIN_POLICIES),
            "description": "train ALS and rewrite gold.recommendations: auto skips a day a newer run supersedes",
        }
    else:
        schemas["run_date"]["description"] = "YYYY-MM-DD: tune on the newest gold day on or before it; default: today"
    for name in (*MODEL_SETTINGS, *(job.settings_args if job else ())):
        field = model[name]
        # An optional setting is {"anyOf": [{"type": number, ...}, {"type": "null"}]}: one schema, null allowed.
        arms = field.get("anyOf", [field])
        declared = {k: v for arm in arms for k, v in arm.items() if k in ("enum", "minimum", "maximum")}
        types = [arm["type"] for arm in arms if "type" in arm]
        declared["type"] = types[0] if len(types) == 1 else types
        schemas[name] = {**declared, "default": getattr(settings, name)}
        if job and name in job.settings_args:
            schemas[name]["description"] = field["description"]
        if getattr(settings, name) is None:
            schemas[name]["description"] = (
                "empty: the newest tuned value, else the ALS mode's best known (docs: Tuning and promotion)"
            )
    return schemas


def should_train(policy: str, run_date: dt.date, runs_on: Callable[[dt.datetime], int]) -> tuple[bool, str]:
    """Whether this run trains and recommends, and why; ``runs_on`` counts this DAG's runs at a logical date.

    Training uses all history up to the run date, so in a backfill or a rerun of an old day only the newest
    day's model matters: the others would be overwritten by the newer run's model at once.
    """
    if policy not in TRAIN_POLICIES:
        raise ConfigError(f"train: must be one of {', '.join(TRAIN_POLICIES)}, got {policy!r}")
    if policy != "auto":
        return policy == "always", f"train={policy}"
    next_day = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if runs_on(next_day):
        return False, f"train=auto: a run for {next_day.date()} exists, so its model supersedes this day's"
    return True, "train=auto: no newer run"


def nightly_schedule(settings: Settings) -> Any:
    """One run per UTC calendar day, started at ``nightly_hour`` UTC on the next day; its logical date is the
    day's midnight, so a backfill's dates are the days it runs (``include/orchestration/timetable.py``)."""
    from include.orchestration.timetable import CalendarDayTimetable

    return CalendarDayTimetable(settings.nightly_hour)


def run_date_of(params: Mapping[str, Any], logical_date: dt.datetime | None) -> str:
    """The day a run processes: the ``run_date`` param, else the run's logical date. A manual or
    asset-triggered run may have no logical date; then it must name the day."""
    if params.get("run_date"):
        return parse_run_date(params["run_date"], "run_date").isoformat()
    if logical_date is None:
        raise ConfigError(
            "run_date: this run has no logical date (a manual or asset-triggered run without one);"
            " trigger it with the run_date param as YYYY-MM-DD"
        )
    return logical_date.date().isoformat()


LANDING_POKE_S = 300  # how often the nightly run looks for the day's completeness marker while it waits


def tuning_due(run_id: str, run_date: str, lake: str) -> bool:
    """Whether the nightly run ``run_id``'s train_als recorded that the next tuning run is due (``ops.model_runs``,
    read through delta-rs: no Spark for one row)."""
    from include.serving import lookup

    query = "SELECT tuning_due FROM ops.model_runs WHERE kind = 'nightly' AND run_id = ? AND run_date = ?"
    _, rows = lookup.query(query, lake, (run_id, run_date), missing_ok=True)
    return any(bool(r[0]) for r in rows)


def tuning_due_event(context: Mapping[str, Any]) -> bool:
    """The body of the nightly DAG's ``tuning_due`` task: :func:`tuning_due` for this run, logged."""
    from include.core.log import setup

    setup()
    run_date = context["ti"].xcom_pull(task_ids=RUN_DATE_TASK)
    due = tuning_due(context["run_id"], run_date, load_settings().lake)
    log.info("%s %s: %s", TUNING_DUE_TASK, run_date, "the next tuning run is due" if due else "not due")
    return due


def landing_missing(settings: Settings, run_date: str) -> str | None:
    """What the day's landing still lacks before the nightly run may read it (the interactions folder's
    completeness marker), or None when it is complete or nothing is to be waited for (no marker configured,
    or ``missing_day=empty``, where a day without data is written empty)."""
    from include.core.tables import landing_dir
    from include.lake.landing import read_marker

    if not settings.landing_marker or settings.missing_day == "empty":
        return None
    folder = landing_dir(settings.lake, "interactions", parse_run_date(run_date, "run_date"))
    if read_marker(folder, settings.landing_marker) is not None:
        return None
    return f"{folder}/{settings.landing_marker}"


def landing_timeout_s(settings: Settings) -> float:
    """The sensor's own time-out: a backstop behind the one-line failure of :func:`landing_missing`'s caller."""
    return settings.landing_wait_minutes * 60.0 + 2 * LANDING_POKE_S


def train_gate(context: Mapping[str, Any]) -> bool:
    """The body of the DAG's short-circuit task: decide from params and the DAG's other runs, and log it."""
    from include.core.log import setup

    setup()
    run_date = parse_run_date(context["ti"].xcom_pull(task_ids=RUN_DATE_TASK), "run_date")

    def runs_on(day: dt.datetime) -> int:
        # a run's logical date is the day's midnight; runs made before the calendar-day timetable have it at the
        # nightly hour, and they still count
        when = sorted({day, day + dt.timedelta(hours=load_settings().nightly_hour)})
        return int(context["ti"].get_dr_count(dag_id=DAG_ID, logical_dates=when))

    decision, why = should_train(context["params"].get("train", "auto"), run_date, runs_on)
    log.info("%s %s: %s (%s)", TRAIN_GATE_TASK, run_date, "train" if decision else "skip training", why)
    return decision
