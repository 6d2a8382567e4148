"""The SQL endpoint with real clients: Spark's Thrift server on loopback, queried with beeline over JDBC."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyspark
import pytest

from include.core import tables
from include.lake import delta_io
from spark_jobs import build_gold
from tests import servers

pytestmark = pytest.mark.integration
BEELINE = Path(pyspark.__file__).parent / "bin" / "beeline"
DAY = "2026-11-02"
USERS = 50
QUERIES = 10


def _recs(spark, run_id: str):
    now = dt.datetime(2026, 11, 3)
    rows = [
        (f"u{u:03d}", f"t{r}", r, 1.0 / r, "als", "m", run_id, DAY, now) for u in range(USERS) for r in range(1, 11)
    ]
    return spark.createDataFrame(rows, tables.GOLD_RECOMMENDATIONS.schema)


def _beeline(port: int, password: str, *args: str) -> subprocess.CompletedProcess[str]:
    url = f"jdbc:hive2://127.0.0.1:{port}/default"
    cmd = [str(BEELINE), "-u", url, "-n", "setlist", "-p", password, "--outputformat=csv2", "--silent=true", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def _rows(output: str) -> list[list[str]]:
    """CSV rows of beeline's output, without the prompt it may echo before a result."""
    text = re.sub(r"(?m)^\d+: jdbc:hive2://\S+> ", "", output)
    return [r for r in csv.reader(io.StringIO(text)) if r]


def _affinity_inputs(spark, lake: str) -> None:
    """The affinity's inputs: a state folded as of the day before DAY, silver of DAY on top (passed by build_gold)
    and of the day after (not passed yet)."""
    at = dt.datetime(2026, 11, 1, 10)
    silver = spark.createDataFrame(
        [
            ("e1", "u1", "t1", 1, 1, at, 1000, False, False, None, "2026-11-01", 1),
            ("e2", "u1", "t2", 1, 2, at, 500, True, False, 4.0, "2026-11-01", 1),
            ("e3", "u1", "t1", 1, 1, at + dt.timedelta(days=1), 900, False, True, None, DAY, 2),
            ("e4", "u2", "t1", 2, 1, at + dt.timedelta(days=2), 900, False, False, None, "2026-11-03", 1),
        ],
        tables.SILVER_INTERACTIONS.schema,
    )
    for day in ("2026-11-01", DAY, "2026-11-03"):
        delta_io.overwrite_partition(silver.where(f"run_date = '{day}'"), tables.SILVER_INTERACTIONS, lake, day)
    folded = build_gold.full_state(silver.where("run_date = '2026-11-01'"), alpha=5.0)
    delta_io.replace_tagged(folded, tables.GOLD_AFFINITY, lake, "2026-11-01")
    for day in ("2026-11-01", DAY):
        passed = spark.createDataFrame([(day, 1)], "run_date string, events long")
        delta_io.overwrite_partition(passed, tables.GOLD_DAILY_METRICS, lake, day)


@pytest.fixture(scope="module")
def server(spark, tmp_path_factory):
    lake = tmp_path_factory.mktemp("sql-lake")
    delta_io.overwrite_partition(_recs(spark, "run-a"), tables.GOLD_RECOMMENDATIONS, str(lake), DAY)
    _affinity_inputs(spark, str(lake))
    port, password = servers.free_port(), secrets.token_urlsafe(12)
    env = {**os.environ, "SETLIST_SQL_PASSWORD": password, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("cfg"))}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    log = tmp_path_factory.mktemp("sql-log") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "include.cli", "sql-server", "--lake", str(lake), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 180
    while "listening at" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    assert "listening at" in log.read_text(), log.read_text()[-3000:]
    yield {"lake": str(lake), "port": port, "password": password, "proc": proc, "log": log}
    proc.terminate()
    proc.wait(timeout=60)


def test_beeline_reads_the_lake_tables_by_name_with_a_login(server):
    result = _beeline(server["port"], server["password"], "-e", "SELECT count(*) AS n FROM gold.recommendations")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _rows(result.stdout) == [["n"], [str(USERS * 10)]]
    # the affinity through its view: the folded state and silver's passed day merged, the unpassed day left out
    query = "SELECT user_id, track_id, plays, liked FROM gold.user_track_affinity ORDER BY user_id, track_id"
    merged = _beeline(server["port"], server["password"], "-e", query)
    assert merged.returncode == 0, merged.stderr[-2000:]
    header = ["user_id", "track_id", "plays", "liked"]
    assert _rows(merged.stdout) == [header, ["u1", "t1", "3", "true"], ["u1", "t2", "1", "false"]]
    refused = _beeline(server["port"], "wrong-password", "-e", "SELECT 1")
    assert refused.returncode != 0
    assert "Error validating the login" in refused.stdout + refused.stderr
    assert servers.listen_addresses(server["port"]) and all(
        a.startswith("127.") for a in servers.listen_addresses(server["port"])
    )


def test_queries_see_whole_snapshots_while_a_run_rewrites_the_table(spark, server, tmp_path):
    stop = threading.Event()
    commits = []

    def rewrite() -> None:
        while not stop.is_set():
            run_id = f"run-{len(commits)}"
            delta_io.overwrite_partition(_recs(spark, run_id), tables.GOLD_RECOMMENDATIONS, server["lake"], DAY)
            commits.append(run_id)
            stop.wait(1.0)  # leave the 2 cores some room for the reads

    # Each result row is tagged, so it can be told from beeline's echo of the script in its output.
    query = (
        "SELECT concat_ws(',', 'RESULT', run_id, CAST(count(*) AS STRING)) AS r FROM gold.recommendations"
        f" WHERE run_date = '{DAY}' GROUP BY run_id;\n"
    )
    script = tmp_path / "reads.sql"
    script.write_text(query * QUERIES)
    writer = threading.Thread(target=rewrite)
    writer.start()
    seen: list[str] = []
    try:
        # beeline runs its queries until they have seen two runs: one batch can fall between two commits
        deadline = time.monotonic() + 240
        while len(set(seen)) < 2 and time.monotonic() < deadline:
            result = _beeline(server["port"], server["password"], "-f", str(script))
            assert result.returncode == 0, result.stderr[-2000:]
            lines = [line.split("RESULT,", 1)[1] for line in result.stdout.splitlines() if "RESULT," in line]
            rows = [line.strip(" \x00\r").split(",") for line in lines]  # beeline pads some lines with NUL
            # one row per query: every read saw exactly one run's complete table, never two runs or a part
            assert len(rows) == QUERIES and all(n == str(USERS * 10) for _, n in rows), rows
            seen += [run for run, _ in rows]
    finally:
        stop.set()
        writer.join()
    assert len(commits) >= 2 and len(set(seen)) >= 2, (commits, sorted(set(seen)))


def test_clients_cannot_write_but_can_read_and_describe(server, tmp_path):
    from include.serving import lookup

    target = tables.GOLD_RECOMMENDATIONS.sql_name
    elsewhere = tmp_path / "new-table"
    writes = [
        f"INSERT INTO {target} SELECT * FROM {target}",
        f"DELETE FROM {target} WHERE rank > 5",
        f"UPDATE {target} SET score = 0",
        f"MERGE INTO {target} t USING {target} s ON t.user_id = s.user_id WHEN MATCHED THEN DELETE",
        f"TRUNCATE TABLE {target}",
        f"ALTER TABLE {target} SET TBLPROPERTIES ('setlist.note' = 'mine')",
        f"OPTIMIZE {target}",
        f"VACUUM {target}",
        f"DROP TABLE {target}",
        f"CREATE TABLE default.mine USING delta LOCATION '{elsewhere}' AS SELECT 1 AS a",
    ]
    reads = ["SHOW TABLES IN gold", f"DESCRIBE {target}", f"DESCRIBE HISTORY {target}", "SET", "USE gold"]
    script = tmp_path / "mixed.sql"
    script.write_text("".join(f"{statement};\n" for statement in [*writes, *reads]))
    before = lookup.snapshot(tables.GOLD_RECOMMENDATIONS, server["lake"]).version()
    result = _beeline(server["port"], server["password"], "--force=true", "-f", str(script))
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    refused = [re.findall(r"read-only: (\w+) is not allowed", line) for line in errors]
    assert len(errors) == len(writes) and all(refused), (refused, output[-4000:])  # and every read answered
    assert lookup.snapshot(tables.GOLD_RECOMMENDATIONS, server["lake"]).version() == before
    assert not elsewhere.exists()
    counted = _beeline(server["port"], server["password"], "-e", f"SELECT count(*) AS n FROM {target}")
    assert _rows(counted.stdout) == [["n"], [str(USERS * 10)]]
