"""The DAG files as Airflow parses them: wiring, params, assets, policy, and no work at parse time."""

from __future__ import annotations

import ast
import datetime as dt
import itertools
from pathlib import Path

import pytest
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from include.core.config import PROJECT_ROOT, ConfigError
from include.orchestration.dag_spec import (
    DAG_ID,
    JOBS,
    MAINTENANCE_DAG_ID,
    PY_FILES_TASK,
    REPORT_DAG_ID,
    RUN_DATE_TASK,
    SPARK_POOL,
    TRAIN_GATE_TASK,
    TRAINING_JOBS,
    TUNING_DAG_ID,
    TUNING_DUE_TASK,
    TUNING_JOB,
    TUNING_SCHEDULE,
    run_date_of,
    should_train,
)
from include.orchestration.run_log import on_failure

pytestmark = pytest.mark.unit
DAGS = PROJECT_ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dag_ids


def test_nightly_dag_wires_one_spark_submit_per_job_in_order(dagbag):
    dag = dagbag.dags[DAG_ID]
    order = [PY_FILES_TASK, *[j.task_id for j in JOBS]]
    order.insert(order.index(TRAINING_JOBS[0]), TRAIN_GATE_TASK)
    assert dag.get_task(JOBS[0].task_id).upstream_task_ids == {PY_FILES_TASK, RUN_DATE_TASK}
    for upstream, downstream in itertools.pairwise(order[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    for job in JOBS:
        task = dag.get_task(job.task_id)
        assert type(task).__name__ == "SparkJobOperator" and isinstance(task, SparkSubmitOperator)
        assert task._conn_id == "spark_default"
        assert Path(task.application).is_file()
        assert "{{ ti.xcom_pull(task_ids='resolve_run_date') }}" in task.application_args
        assert task.pool == SPARK_POOL
        assert task.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
        assert task.conf["spark.jars"].endswith("*.jar")


@pytest.mark.parametrize(
    ("master", "expected"),
    [
        ("sc://localhost:15002", ["--remote", "sc://localhost:15002"]),
        ("local[*]", ["--master", "local[*]"]),
        ("spark://127.0.0.1:7077", ["--master", "spark://127.0.0.1:7077"]),
    ],
)
def test_spark_tasks_submit_to_a_connect_server_with_remote(monkeypatch, master, expected):
    """The command spark-submit gets: a Connect client (``--remote``) carries only its session's settings."""
    from include.core.config import load_settings
    from include.orchestration.dag_spec import JOBS, submit_kwargs
    from include.orchestration.spark_operator import SparkJobOperator

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", f'{{"conn_type": "spark", "host": "{master}"}}')
    kwargs = submit_kwargs(JOBS[0], load_settings(env={}))
    kwargs.update(py_files="/tmp/code.zip", application_args=["--run-date", "2026-11-01"])
    hook = SparkJobOperator(**kwargs)._get_hook()
    cmd = hook._build_spark_submit_command(kwargs["application"])
    assert cmd[1:3] == expected and ("--master" in cmd) == (not master.startswith("sc://"))
    confs = {cmd[i + 1].split("=", 1)[0] for i, arg in enumerate(cmd) if arg == "--conf"}
    if master.startswith("sc://"):
        assert "--driver-memory" not in cmd and "--py-files" in cmd
        assert confs == {"spark.sql.shuffle.partitions", "spark.sql.session.timeZone", "spark.pyspark.python"}
        # spark-submit's own JVMs start light; a driver (any other master) keeps the full JIT
        assert "-XX:TieredStopAtLevel=1" in hook._env["SPARK_SUBMIT_OPTS"]
        assert "-XX:SharedArchiveFile=" in hook._env["SPARK_LAUNCHER_OPTS"]
    else:
        assert "spark.sql.extensions" in confs and "--driver-memory" in cmd
        assert "SPARK_SUBMIT_OPTS" not in (hook._env or {})
    assert cmd[-3:] == [kwargs["application"], "--run-date", "2026-11-01"]


def test_dag_policy_owner_retries_tags_catchup(dagbag):
    assert {DAG_ID, MAINTENANCE_DAG_ID, REPORT_DAG_ID, TUNING_DAG_ID} <= set(dagbag.dag_ids)
    for dag in dagbag.dags.values():
        assert dag.tags and not dag.catchup and dag.max_active_runs == 1
        for task in dag.tasks:
            assert task.owner not in ("", "airflow") and task.retries >= 1
            assert task.retry_exponential_backoff == 2.0 and task.max_retry_delay is not None
            callbacks = task.on_failure_callback
            assert on_failure in (callbacks if isinstance(callbacks, list) else [callbacks])


def test_gold_tasks_publish_assets_and_the_report_dag_runs_on_recommendations(dagbag):
    nightly = dagbag.dags[DAG_ID]
    published = {t.task_id: sorted(a.name for a in t.outlets) for t in nightly.tasks if t.outlets}
    assert published == {
        "build_gold": ["gold.daily_metrics", "gold.track_popularity", "gold.user_track_affinity"],
        "recommend": ["gold.recommendations"],
        TUNING_DUE_TASK: ["ops.tuning_due"],
    }
    assert nightly.get_task(TUNING_DUE_TASK).upstream_task_ids == {TRAINING_JOBS[0]}  # beside recommend
    (recommendations,) = nightly.get_task("recommend").outlets
    report = dagbag.dags[REPORT_DAG_ID]
    assert list(report.timetable.asset_condition.objects) == [recommendations]  # on that asset, nothing else
    assert [t.task_id for t in report.tasks] == ["write_report"]


def test_the_tuning_dag_runs_weekly_and_on_the_nightly_runs_tuning_due_asset(dagbag):
    from airflow.sdk import AssetOrTimeSchedule

    tuning, nightly = dagbag.dags[TUNING_DAG_ID], dagbag.dags[DAG_ID]
    assert isinstance(tuning.timetable, AssetOrTimeSchedule)
    assert tuning.timetable.timetable.expression == TUNING_SCHEDULE
    (due,) = nightly.get_task(TUNING_DUE_TASK).outlets
    assert list(tuning.timetable.asset_condition.objects) == [due]
    job = tuning.get_task(TUNING_JOB.task_id)
    assert job.upstream_task_ids == {PY_FILES_TASK, RUN_DATE_TASK} and job.pool == SPARK_POOL
    args = job.application_args
    assert args[args.index("--tuning-seconds") + 1] == "{{ params.tuning_seconds }}"
    budget = tuning.params.get_param("tuning_seconds").schema
    assert (budget["type"], budget["minimum"], budget["maximum"]) == ("integer", 10, 604_800)
    assert "train" not in tuning.params and "rank" in tuning.params


def test_assets_name_tables_not_lake_locations(tmp_path, monkeypatch):
    """Two lakes (or one that moved) parse to the same assets, so neither blocks the other's in one Airflow home."""
    from airflow.dag_processing.dagbag import DagBag

    outlets = []
    for lake in ("first", "moved/elsewhere"):
        monkeypatch.setenv("SETLIST_LAKE", str(tmp_path / lake))
        bag = DagBag(dag_folder=str(DAGS))
        outlets.append({(a.name, a.uri) for task in bag.dags[DAG_ID].tasks for a in task.outlets})
    assert outlets[0] == outlets[1]
    assert ("gold.recommendations", "setlist://gold/recommendations") in outlets[0]


def test_dag_files_do_no_io_or_heavy_imports_at_parse_time():
    banned_modules = {"pyspark", "great_expectations", "pandas", "delta"}
    banned_calls = {"open", "read_text", "read_bytes", "glob", "listdir", "iterdir", "exists"}
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: task bodies may import what they need
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] in banned_modules for n in names), f"{path.name}: {names}"
            # the layer rule (docs/contributing/architecture.md): DAG files wire tasks from orchestration and core only
            ours = [n for n in names if n.split(".")[0] in {"include", "spark_jobs", "expectations"}]
            assert all(n.startswith(("include.orchestration", "include.core")) for n in ours), f"{path.name}: {ours}"
        top_level_calls = [
            n
            for stmt in tree.body
            if not isinstance(stmt, ast.FunctionDef)
            for n in ast.walk(stmt)
            if isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) in banned_calls
        ]
        assert top_level_calls == [], path.name


def test_training_gate_skips_a_day_that_a_newer_run_supersedes():
    day = dt.date(2026, 11, 1)
    asked: list[dt.datetime] = []

    def runs_on(when: dt.datetime) -> int:
        asked.append(when)
        return 1 if when.date() == dt.date(2026, 11, 2) else 0

    assert should_train("auto", day, runs_on)[0] is False
    assert asked == [dt.datetime(2026, 11, 2, tzinfo=dt.UTC)]
    assert should_train("auto", dt.date(2026, 11, 2), runs_on)[0] is True
    assert should_train("always", day, runs_on)[0] is True
    assert should_train("never", dt.date(2026, 11, 2), runs_on)[0] is False
    with pytest.raises(ConfigError, match="train: must be one of auto, always, never"):
        should_train("sometimes", day, runs_on)


def test_a_nightly_hour_outside_the_day_is_refused_by_name(monkeypatch):
    from include.core.config import load_settings

    monkeypatch.setenv("SETLIST_NIGHTLY_HOUR", "24")
    with pytest.raises(ConfigError, match="nightly_hour: must be between 0 and 23, got 24"):
        load_settings()


def test_run_date_is_the_param_else_the_logical_date_else_a_clear_error():
    logical = dt.datetime(2026, 11, 2, 2, tzinfo=dt.UTC)
    assert run_date_of({"run_date": "2026-11-05"}, logical) == "2026-11-05"
    assert run_date_of({"run_date": None}, logical) == "2026-11-02"
    with pytest.raises(ConfigError, match=r"run_date: this run has no logical date .* with the run_date param"):
        run_date_of({"run_date": None}, None)
    with pytest.raises(ConfigError, match="run_date: expected a date as YYYY-MM-DD, got '5 Nov'"):
        run_date_of({"run_date": "5 Nov"}, logical)


def test_train_param_is_validated_by_the_dag(dagbag):
    param = dagbag.dags[DAG_ID].params.get_param("train")
    assert param.resolve("never") == "never"
    with pytest.raises(Exception, match="sometimes"):
        param.resolve("sometimes")
