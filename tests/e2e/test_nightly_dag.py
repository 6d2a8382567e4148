"""The nightly DAG through Airflow with the real SparkSubmitOperator and spark-submit: one generated day with
``setlist run`` (``airflow dags test``), then, on ``setlist airflow``'s default set-up, a two-day backfill
through the REST API on the real scheduler that must leave the first day exactly as it was, a repeat of it that
must change nothing, a run triggered from the UI in chromium that survives a supervisor's stop and restart of
Airflow, and refused triggers."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include.core import tables
from include.lake import gold_state
from include.models import als, evaluation
from include.orchestration.dag_spec import DAG_ID, TUNING_DAG_ID, TUNING_DUE_TASK
from include.serving import lookup
from tests import servers
from tests.checks import (
    assert_accounting_balances,
    assert_k_unplayed_tracks_per_active_user,
    assert_unchanged,
    read,
    rows,
    snapshot,
)
from tests.e2e.conftest import BACKFILL_DAYS, DAYS, K, setlist

pytestmark = pytest.mark.e2e


def test_every_active_user_gets_k_unplayed_tracks_with_raw_ids(spark, lake):
    for day in DAYS:
        assert_k_unplayed_tracks_per_active_user(spark, lake, day, K)


def test_the_nightly_run_evaluates_its_model_beside_the_baselines_and_promotes_the_first(spark, lake):
    runs = read(spark, tables.OPS_MODEL_RUNS, lake).collect()
    assert [(r["kind"], r["run_date"], r["mode"]) for r in runs] == [("nightly", DAYS[0], "implicit")]
    run = runs[0]
    model = read(spark, tables.OPS_MODELS, lake).where(F.col("run_date") == DAYS[0]).first()
    assert run["run_key"] == model["model_version"] and run["params"] == model["params"]
    assert run["promoted"] and run["decision"].startswith("no champion yet")
    # No search at night: nothing set, so the mode's best known settings are fitted as they are.
    assert not run["tuned"] and json.loads(run["trials"]) == []
    assert als.AlsParams.from_json(run["params"]) == evaluation.best_known("implicit", 42)
    name = f"ndcg_at_{K}"
    assert run["primary_metric"] == name and run["primary_value"] == run["metrics"][name]
    for metrics in (run["metrics"], run["baseline_metrics"], run["popularity_metrics"]):
        assert {f"{m}_at_{K}" for m in ("precision", "recall", "ndcg", "map")} | {"coverage"} <= set(metrics)
        assert all(0.0 <= metrics[m] <= 1.0 for m in metrics if m != "users_evaluated")
    assert run["metrics"]["users_evaluated"] > 30 and run["training_rows"] > 0 and run["code_version"]
    assert "gold.user_track_affinity" in run["input_versions"]
    for plot in ("metrics.png", "ratings.png"):
        assert (Path(lake) / "reports" / "model_runs" / run["run_key"] / plot).read_bytes()[:4] == b"\x89PNG"


def test_bad_lines_are_kept_in_bronze_and_quarantined_in_silver(spark, lake):
    bronze = read(spark, tables.BRONZE_INTERACTIONS, lake).where(F.col("_run_date") == DAYS[0])
    assert bronze.where(F.col("event_id").isin("ev_bad_1", "ev_bad_2")).count() == 2
    q = read(spark, tables.SILVER_QUARANTINE, lake).where(F.col("run_date") == DAYS[0]).collect()
    reasons = sorted(r["reasons"].split(",")[0] for r in q)
    assert reasons == ["malformed_row", "played_at_invalid"]
    assert all(r["source_row"] and r["source_file"].endswith(".csv") for r in q)
    counts = assert_accounting_balances(spark, lake)
    day1 = next(c for c in counts if c["run_date"] == DAYS[0])
    assert day1["quarantined"] == 2 and day1["duplicates"] > 0
    assert read(spark, tables.SILVER_INTERACTIONS, lake).groupBy("event_id").count().where("count > 1").count() == 0


def test_sql_command_reads_gold_tables_by_name(spark, lake):
    result = setlist(
        "sql",
        "--lake",
        lake,
        "--format",
        "csv",
        "SELECT run_date, count(*) AS n FROM gold.recommendations GROUP BY run_date ORDER BY run_date",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "run_date,n" and [line.split(",")[0] for line in lines[1:]] == [DAYS[0]]
    # the affinity, merged on read, through the view setlist sql registers: the state as of the newest passed day
    query = "SELECT count(*) AS pairs, sum(plays) AS plays, sum(full_plays) AS full FROM gold.user_track_affinity"
    merged = setlist("sql", "--lake", lake, "--format", "csv", query)
    assert merged.returncode == 0, merged.stderr[-2000:]
    newest = gold_state.passed(spark, lake, "9999-12-31")[-1]
    state = gold_state.as_of(spark, lake, newest, alpha=1.0).agg(F.count("*"), F.sum("plays"), F.sum("full_plays"))
    assert merged.stdout.strip().splitlines()[1] == ",".join(str(v) for v in state.first())
    # make demo's closing query, on DuckDB as the demo runs it: the most active user's top 10
    demo = (Path(__file__).resolve().parents[2] / "include" / "serving" / "sql" / "demo_top10.sql").read_text()
    columns, top = lookup.query(demo, lake)
    assert columns[:3] == ["user_id", "rank", "track_id"] and [r[1] for r in top] == list(range(1, K + 1))
    bad = setlist("sql", "--lake", lake, "SELECT * FROM gold.no_such_table")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "no table gold.no_such_table; the lake's tables are bronze.interactions," in bad.stderr
    # A query Spark fails while it runs: its one line on the terminal; Spark's own records in the log it names.
    overflow = setlist("sql", "--lake", lake, "SELECT sum(xxhash64(event_id)) FROM silver.interactions")
    assert overflow.returncode == 2 and len(overflow.stderr.strip().splitlines()) == 1, overflow.stderr[-3000:]
    assert overflow.stderr.startswith("setlist sql: [ARITHMETIC_OVERFLOW] overflow.")
    log = Path(re.search(r"\(Spark's log: (.+)\)$", overflow.stderr.strip()).group(1))
    assert "SparkArithmeticException" in log.read_text(encoding="utf-8")


def rows_by_day(lake: str, days: tuple[str, ...]) -> dict[str, list]:
    """Every date-partitioned table's rows of these days, audit columns left out."""
    out = {}
    for table in tables.ALL_TABLES:
        found = rows(table, lake) if table.partition_by else None
        if found is not None:
            out[table.sql_name] = [r for r in found if str(r[table.partition_by]) in days]
    return out


def wait_for_backfill(api, backfill_id: int, timeout_s: float = 1500) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while api.call("GET", f"/api/v2/backfills/{backfill_id}")["completed_at"] is None:
        assert time.monotonic() < deadline, f"backfill {backfill_id} did not finish in {timeout_s:.0f} s"
        time.sleep(2)
    runs = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
    return sorted(runs, key=lambda r: r["logical_date"])


def test_a_rest_api_backfill_on_the_default_set_up_runs_each_day_once_and_repeating_it_changes_nothing(
    spark, lake, airflow
):
    """Two days through the real scheduler on the embedded metadata database, requested right after the DAG is
    unpaused (on SQLite that was refused whenever the scheduler held the lock): two successful runs, one per
    day. The first day already had its run in another database (``setlist run`` on the cluster), so its rerun
    must leave its partitions exactly as they were; training runs once, for the newest day (train=auto)."""
    api = airflow.api
    before = rows_by_day(lake, DAYS)
    before_runs = read(spark, tables.OPS_MODEL_RUNS, lake).collect()
    # First a tuning run from the REST API, as the UI triggers one, with a small budget: on day 1's gold.
    api.call("PATCH", f"/api/v2/dags/{TUNING_DAG_ID}", {"is_paused": False})
    conf = {"run_date": DAYS[0], "tuning_seconds": 10}
    tuning = api.call("POST", f"/api/v2/dags/{TUNING_DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})
    assert wait_for_run(api, tuning["dag_run_id"], dag_id=TUNING_DAG_ID)["state"] == "success"
    api.call("PATCH", f"/api/v2/dags/{TUNING_DAG_ID}", {"is_paused": True})  # no asset-triggered run mid-test
    [tuned] = read(spark, tables.OPS_TUNED_SETTINGS, lake).collect()
    assert (tuned["version"], tuned["run_id"]) == (f"implicit-{DAYS[0]}", tuning["dag_run_id"])
    assert read(spark, tables.OPS_TUNING_TRIALS, lake).count() == tuned["trials"] >= 2
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    # A run's logical date is its calendar day's midnight, so midnight bounds name the first and the last day.
    request = {
        "dag_id": DAG_ID,
        "from_date": f"{BACKFILL_DAYS[0]}T00:00:00Z",
        "to_date": f"{BACKFILL_DAYS[-1]}T00:00:00Z",
        "max_active_runs": 1,
    }
    backfill = api.call("POST", "/api/v2/backfills", request)
    runs = wait_for_backfill(api, backfill["id"])
    assert [(r["logical_date"][:19], r["state"]) for r in runs] == [(f"{d}T00:00:00", "success") for d in BACKFILL_DAYS]
    db = airflow.db_url()
    assert runs_per_day(db) == dict.fromkeys(BACKFILL_DAYS, 1)

    after = rows_by_day(lake, DAYS)
    for name in before:  # the day that had its run is rewritten exactly as it was
        assertDataFrameEqual(after[name], before[name], checkRowOrder=False)
    silver = read(spark, tables.SILVER_INTERACTIONS, lake)
    assert sorted(r[0] for r in silver.select("run_date").distinct().collect()) == list(BACKFILL_DAYS)
    assert silver.groupBy("event_id").count().where("count > 1").count() == 0
    models = read(spark, tables.OPS_MODELS, lake).select("run_date").collect()
    assert sorted(r[0] for r in models) == [DAYS[0], BACKFILL_DAYS[-1]]
    runs_after = read(spark, tables.OPS_MODEL_RUNS, lake).collect()
    assert [r for r in runs_after if r["run_date"] == DAYS[0]] == before_runs  # the older day: not trained again
    # The newest day's model was judged against day 1's (the champion): its lists are published only if promoted.
    newest = read(spark, tables.OPS_MODEL_RUNS, lake).where(F.col("run_date") == BACKFILL_DAYS[-1]).first()
    assert newest["champion_run_key"] == before_runs[0]["run_key"], newest["decision"]
    # the nightly fit after the tuning run used its settings, and no search of its own
    assert als.AlsParams.from_json(newest["params"]) == als.AlsParams.from_json(tuned["params"]) and not newest["tuned"]
    assert (
        newest["tuned_version"] == tuned["version"] and newest["params_source"] == f"tuned {tuned['version']} settings"
    )
    run_id = quote(runs[-1]["dag_run_id"], safe="")
    due = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TUNING_DUE_TASK}")
    assert due["state"] == ("success" if newest["tuning_due"] else "skipped")  # the asset event only when due
    recs = read(spark, tables.GOLD_RECOMMENDATIONS, lake)
    published = {DAYS[0], BACKFILL_DAYS[-1]} if newest["promoted"] else {DAYS[0]}
    assert {r[0] for r in recs.select("run_date").distinct().collect()} == published, newest["decision"]

    # The same backfill again, this time with Airflow's CLI: every day has its run, so it starts none.
    everything = snapshot(lake)
    cli = [str(Path(sys.executable).parent / "airflow"), "backfill", "create", "--dag-id", DAG_ID]
    cli += ["--from-date", request["from_date"], "--to-date", request["to_date"], "--max-active-runs", "1"]
    created = subprocess.run(cli, env=airflow.cli_env(), capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
    again = max(b["id"] for b in api.call("GET", f"/api/v2/backfills?dag_id={DAG_ID}")["backfills"])
    assert again > backfill["id"]
    assert [(r["dag_run_id"], r["state"]) for r in wait_for_backfill(api, again)] == [
        (r["dag_run_id"], r["state"]) for r in runs
    ]
    assert_unchanged(snapshot(lake), everything)
    assert runs_per_day(db) == dict.fromkeys(BACKFILL_DAYS, 1)
    logs = [p for p in airflow.home.rglob("*") if p.is_file() and "postgres" not in p.parts]
    password = urlsplit(db).password
    assert logs and password and not [p for p in logs if password.encode() in p.read_bytes()]

    # 1 to 3 February as the CLI's dry run plans it: three calendar days, at midnight.
    dry = subprocess.run(
        [*cli[:5], "--from-date", "2026-02-01T00:00:00Z", "--to-date", "2026-02-03T00:00:00Z", "--dry-run"],
        env=airflow.cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    planned = re.findall(r"\| (2026-\d\d-\d\d \d\d:\d\d:\d\d)\+00:00", dry.stdout)
    assert planned == [f"2026-02-0{d} 00:00:00" for d in (1, 2, 3)], dry.stdout[-2000:]


def runs_per_day(db_url: str) -> dict[str, int]:
    """The nightly DAG's runs per logical day, read from Airflow's PostgreSQL database itself."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(db_url)
    query = "SELECT logical_date FROM dag_run WHERE dag_id = :dag"
    try:
        with engine.connect() as db:
            days = [d.date().isoformat() for (d,) in db.execute(sqlalchemy.text(query), {"dag": DAG_ID})]
    finally:
        engine.dispose()
    return {d: days.count(d) for d in sorted(set(days))}


def test_keys_are_stable_across_days(spark, lake):  # after the backfill added two days
    dim = read(spark, tables.SILVER_DIM_USER, lake)
    assert dim.count() == dim.select("user_id").distinct().count() == dim.select("user_key").distinct().count()
    day1_keys = {
        (r["user_id"], r["user_key"])
        for r in read(spark, tables.SILVER_INTERACTIONS, lake)
        .where(F.col("run_date") == DAYS[0])
        .select("user_id", "user_key")
        .distinct()
        .collect()
    }
    assert day1_keys <= {(r["user_id"], r["user_key"]) for r in dim.collect()}


def wait_for_run(api, run_id: str, timeout_s: float = 1200, dag_id: str = DAG_ID) -> dict:
    deadline = time.monotonic() + timeout_s
    while (run := api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"))["state"] not in (
        "success",
        "failed",
    ):
        assert time.monotonic() < deadline, f"run {run_id} did not finish in {timeout_s:.0f} s"
        time.sleep(2)
    return run


SPARK_TASKS = ("ingest_bronze", "build_silver", "build_gold")


def test_a_run_triggered_from_the_ui_survives_a_supervisors_stop_of_airflow_and_changes_nothing(spark, lake, airflow):
    """Headless Debian chromium: sign in, open the DAG, see an out-of-range rank refused, trigger day 1 (the day
    the Spark cluster wrote) again with train=never. While one of its Spark tasks runs, ``setlist airflow`` is
    stopped as systemd or ``docker stop`` stop a service (SIGTERM to its process group, SIGKILL 3 s later):
    nothing it started outlives it. Started again, it runs the interrupted task again and the run succeeds,
    with no hand on the database; the rerun leaves every table as it was. The screenshot of the finished run is
    kept as a test artifact."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    before = snapshot(lake)
    with servers.chromium(1400, 2000) as browser:
        wait = WebDriverWait(browser, 60)
        sign_in(browser, wait, airflow)
        browser.get(f"{airflow.url}/dags/{DAG_ID}")
        trigger = (By.CSS_SELECTOR, "button[aria-label='Trigger Dag']")
        # The Backfill form, 1 to 3 February picked at midnight: the dry run it shows plans three runs.
        wait.until(ec.element_to_be_clickable(trigger)).click()
        wait.until(ec.element_to_be_clickable((By.XPATH, "//*[text()='Backfill']"))).click()
        for field, date in enumerate(("2026/02/01", "2026/02/03")):
            pick_date_and_time(browser, wait, field, date, "00:00")
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "3 runs will be triggered."))
        [b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "Cancel"][-1].click()

        wait.until(ec.element_to_be_clickable(trigger)).click()
        wait.until(ec.element_to_be_clickable((By.XPATH, "//*[text()='Single Run']"))).click()
        wait.until(ec.presence_of_element_located((By.NAME, "element_run_date"))).send_keys(
            dt.date.fromisoformat(DAYS[0]).strftime("%m%d%Y")
        )
        train = browser.find_element(By.NAME, "element_train").find_element(By.XPATH, "preceding::input[1]")
        train.click()
        never = wait.until(
            lambda b: [o for o in b.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == "never"]
        )
        never[0].click()
        rank = browser.find_element(By.NAME, "element_rank")
        rank.send_keys(Keys.CONTROL, "a")  # a modifier stays down until the end of its send_keys call
        rank.send_keys("0", Keys.TAB)  # below the allowed 1..500
        wait.until(lambda _: rank.get_attribute("value") == "1")  # refused: the form keeps the minimum
        rank.send_keys(Keys.CONTROL, "a")
        rank.send_keys("8", Keys.TAB)
        assert browser.find_element(By.NAME, "element_train").get_attribute("value") == "never"
        [b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "Trigger"][-1].click()
        wait.until(lambda b: "/runs/manual__" in b.current_url)
        run_id = unquote(browser.current_url.rsplit("/runs/", 1)[1])

        interrupted = wait_for_a_running_spark_task(airflow.api, run_id)
        airflow.stop_as_a_supervisor()
        assert airflow.left_behind() == []
        assert not servers.listen_addresses(airflow.port)
        airflow.start()  # its start ends the dead scheduler's jobs, so the interrupted task runs again at once
        run = wait_for_run(airflow.api, run_id)
        assert run["state"] == "success", run
        assert {k: run["conf"][k] for k in ("run_date", "train", "rank")} == {
            "run_date": DAYS[0],
            "train": "never",
            "rank": 8,
        }
        task = airflow.api.call(
            "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{interrupted}"
        )
        assert task["state"] == "success" and task["try_number"] >= 2, task

        sign_in(browser, wait, airflow)  # a new start signs with a new secret
        browser.get(f"{airflow.url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}")
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "recommend"))
        assert servers.screenshot(browser, "airflow-triggered-run").stat().st_size > 10_000
    assert_unchanged(snapshot(lake), before)


def sign_in(browser, wait, airflow) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    browser.delete_all_cookies()
    browser.get(airflow.url + "/")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(airflow.password, Keys.ENTER)
    wait.until(lambda b: "/auth/login" not in b.current_url)


def wait_for_a_running_spark_task(api, run_id: str, timeout_s: float = 600) -> str:
    """The id of the run's first Spark task that is running, once one is."""
    deadline = time.monotonic() + timeout_s
    while True:
        tasks = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances")
        running = [t["task_id"] for t in tasks["task_instances"] if t["state"] == "running"]
        if found := [t for t in running if t in SPARK_TASKS]:
            return found[0]
        assert time.monotonic() < deadline, f"no Spark task of {run_id} ran within {timeout_s:.0f} s"
        time.sleep(1)


def pick_date_and_time(browser, wait, field: int, date: str, time_of_day: str) -> None:
    """Fill Airflow's date-time picker number ``field`` of the open form (its popover has a date and a time box)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.find_elements(By.CSS_SELECTOR, "[data-testid='datetime-input']")[field].click()

    def shown(placeholder: str):
        boxes = browser.find_elements(By.CSS_SELECTOR, f"input[placeholder='{placeholder}']")
        return next((b for b in boxes if b.is_displayed()), None)

    day = wait.until(lambda _: shown("YYYY/MM/DD"))
    day.send_keys(Keys.CONTROL, "a")
    day.send_keys(date)
    clock = shown("HH:mm")
    clock.send_keys(Keys.CONTROL, "a")  # the To field fills in 23:59 once a date is picked
    clock.send_keys(time_of_day, Keys.TAB)
    clock.send_keys(Keys.ESCAPE)
    wanted = dt.datetime.strptime(f"{date} {time_of_day}", "%Y/%m/%d %H:%M").strftime("%b %d, %Y %H:%M")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-testid='datetime-input']")[field].text == wanted)


def test_invalid_params_and_runs_without_a_date_are_refused_with_the_field_named(spark, lake, airflow):
    from urllib.error import HTTPError

    api = airflow.api
    with pytest.raises(HTTPError) as refused:
        api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {"rank": 0}})
    assert refused.value.code == 400
    assert "Invalid input for param rank: 0 is less than the minimum of 1" in refused.value.read().decode()
    # A manual run with neither a logical date nor a run_date param fails at once (no retries) and says why;
    # the failure callback records it in ops.run_log.
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})
    assert wait_for_run(api, run["dag_run_id"], timeout_s=300)["state"] == "failed"
    logged = read(spark, tables.OPS_RUN_LOG, lake).where(F.col("run_id") == run["dag_run_id"]).collect()
    assert [(r["task_id"], r["try_number"]) for r in logged] == [("resolve_run_date", 1)]
    assert "run_date: this run has no logical date" in logged[0]["error"]
