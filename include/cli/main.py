"""``setlist``: generate sample data, run the nightly DAG through Airflow, and query the lake with SQL.

generate writes landing CSV; run drives Airflow (which submits the Spark jobs); sql reads Delta tables.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

import click

from include.cli import evaluate
from include.cli.output import FORMATS, print_rows
from include.core import log as setlist_log
from include.core import processes
from include.core.commands import CommandExit, invoke
from include.core.config import (
    PROJECT_ROOT,
    RANGES,
    ConfigError,
    Settings,
    check_range,
    load_settings,
    parse_run_date,
)
from include.orchestration import airflow_run
from include.orchestration.dag_spec import TRAIN_POLICIES

log = logging.getLogger(__name__)

ENGINES = ("spark", "duckdb")


@click.group(name="setlist", help=__doc__, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    pass


LAKE = click.option("--lake", default=None, help="lake root (default: $SETLIST_LAKE or ./lake)")
FORMAT = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)


@cli.command(help="write sample data: landing CSV in the contract (catalog + daily events), or a play-count source")
@LAKE
@click.option(
    "--format",
    "kind",
    type=click.Choice(("contract", "play-counts")),
    default="contract",
    show_default=True,
    help="contract: landing days for the DAG; play-counts: plays.tsv and artists.tsv in --out for"
    " `setlist evaluate --source play-counts`",
)
@click.option("--start", default=None, help="contract: first day, YYYY-MM-DD")
@click.option("--days", type=int, default=3, show_default=True)
@click.option("--users", type=int, default=None, help="default: 500 (contract), 1000 (play-counts)")
@click.option(
    "--tracks", type=int, default=None, help="tracks or artists; default: 2000 (contract), 5000 (play-counts)"
)
@click.option("--events-per-day", type=int, default=20_000, show_default=True)
@click.option("--rows", type=int, default=100_000, show_default=True, help="play-counts: (user, artist) rows")
@click.option("--out", default=None, help="play-counts: the folder to write")
@click.option("--seed", type=int, default=42, show_default=True)
def generate(
    lake: str | None,
    kind: str,
    start: str | None,
    days: int,
    users: int | None,
    tracks: int | None,
    events_per_day: int,
    rows: int,
    out: str | None,
    seed: int,
) -> int:
    from include.cli import generate as sample

    if kind == "play-counts":
        if not out:
            raise click.UsageError("--out: required with --format play-counts (the folder to write)")
        counts = sample.PlayCountSpec(out, rows, users or 1_000, tracks or 5_000, seed)
        sample.generate_play_counts(counts)
        return 0
    if not start:
        raise click.UsageError("--start: required with --format contract (the first day, YYYY-MM-DD)")
    settings = load_settings(lake=lake)
    start_date = parse_run_date(start, "--start")
    spec = sample.GenerateSpec(settings.lake, start_date, days, users or 500, tracks or 2_000, events_per_day, seed)
    sample.generate(dataclasses.replace(spec, marker=settings.landing_marker))
    return 0


def _run_in_airflow(settings: Settings, args: Sequence[str], log_file: Path) -> int:
    """Run ``python args...`` in the Airflow environment, with a warm Spark for its Spark tasks (unless
    ``spark_mode`` is submit); keep the full log in ``log_file``, print progress."""
    from include.orchestration import metadata_db, spark_server
    from include.orchestration.airflow_env import airflow_env, airflow_home

    # the warm Spark starts in the background while the metadata database starts and Airflow prepares
    with spark_server.running(settings) as warm, metadata_db.environment(settings, airflow_home()) as db_env:
        if warm.env:
            settings = settings.with_overrides(spark_remote=warm.env["SETLIST_SPARK_REMOTE"])
        return _logged(args, {**airflow_env(settings), **db_env, **warm.env}, log_file, warm.check)


def _logged(
    args: Sequence[str], env: dict[str, str], log_file: Path, problem: Callable[[], str | None] = lambda: None
) -> int:
    """Run ``python args...``: its output goes to ``log_file`` (and its last lines to stderr if it fails);
    what the person follows is the Setlist log records of it and of every task and job it starts, read back
    as events from ``<log_file>.events`` while it runs. When ``problem()`` says what went wrong around it (the
    warm Spark did not start), the process is stopped and that is the error."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    events = log_file.with_suffix(".events")
    events.write_text("", encoding="utf-8")
    tail: deque[str] = deque(maxlen=60)
    with open(log_file, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env={**env, setlist_log.EVENTS_VAR: str(events)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        drain = threading.Thread(target=_copy, args=(proc.stdout, out, tail), daemon=True)
        drain.start()
        offset, why = 0, None
        try:
            while drain.is_alive():
                drain.join(0.5)
                offset = _show_events(events, offset)
                if why is None and (why := problem()):
                    # its tasks and their spark-submits too: they hold its output open, and would retry in vain
                    threading.Thread(target=processes.end_tree, args=(proc.pid, 5.0), daemon=True).start()
        except BaseException:  # stopped (Ctrl-C, SIGTERM): the run and everything it started stop first
            processes.end_tree(proc.pid, 10.0)
            drain.join(10.0)
            raise
        code = proc.wait()
        _show_events(events, offset)
    if why:
        print(f"setlist: {why}", file=sys.stderr)
        return 1
    if code != 0:
        print("\n".join(["--- last lines of the Airflow log ---", *tail]), file=sys.stderr)
        print(f"full log: {log_file}", file=sys.stderr)
    return code


def _copy(lines: Iterable[str], out: TextIO, tail: deque[str]) -> None:
    for line in lines:
        out.write(line)
        tail.append(line.rstrip())


def _show_events(path: Path, offset: int) -> int:
    """Print the events appended since ``offset``: a DAG run's own lines flush left, its tasks' indented."""
    events, offset = setlist_log.read_events(path, offset)
    for event in events:
        indent = "" if event["logger"] == airflow_run.LOGGER else "    "
        print(f"{indent}[setlist] {event['message']}", flush=True)
    return offset


@cli.command(help="run the nightly DAG through Airflow for one or more dates")
@LAKE
@click.option("--date", "dates_", required=True, multiple=True, help="YYYY-MM-DD (repeat, or several after one --date)")
@click.argument("more_dates", nargs=-1)
@click.option(
    "--train",
    type=click.Choice(TRAIN_POLICIES),
    default=None,
    help="the DAG's train param for every date (default: auto for the newest date, never for the others)",
)
def run(lake: str | None, dates_: tuple[str, ...], more_dates: tuple[str, ...], train: str | None) -> int:
    from include.orchestration import preflight
    from include.orchestration.airflow_env import airflow_home
    from include.orchestration.dag_spec import DAG_ID

    settings = load_settings(lake=lake)
    dates = [parse_run_date(d, "--date") for d in (*dates_, *more_dates)]
    preflight.check(settings)
    runs = []
    for day in dates:
        # Like a backfill, several dates train once: on the newest one (--train overrides for all dates).
        policy = train or ("auto" if day == max(dates) else "never")
        # the logical date a scheduled run of the day has (its midnight), so a later backfill or scheduled run
        # sees this run as the day's run
        logical = f"{day.isoformat()}T00:00:00+00:00"
        runs.append(f"{logical}=" + json.dumps({"run_date": day.isoformat(), "train": policy}))
    log.info("lake %s; Airflow home %s", settings.lake, airflow_home())
    span = dates[0].isoformat() + (f"_{dates[-1].isoformat()}" if len(dates) > 1 else "")
    log_file = airflow_home() / "logs" / f"setlist-run-{span}.log"
    return _run_in_airflow(settings, ["-m", "include.orchestration.airflow_run", DAG_ID, *runs], log_file)


@cli.command(help="run the tuning DAG through Airflow: search the ALS settings on the newest gold day")
@LAKE
@click.option(
    "--date", "date_", default=None, help="tune on the newest gold day on or before it, YYYY-MM-DD (default: today)"
)
@click.option(
    "--seconds",
    type=click.IntRange(10, 604_800),
    default=None,
    help="the search's budget (default: $SETLIST_TUNING_SECONDS, else 900)",
)
def tune(lake: str | None, date_: str | None, seconds: int | None) -> int:
    import datetime as dt

    from include.orchestration import preflight
    from include.orchestration.airflow_env import airflow_home
    from include.orchestration.dag_spec import TUNING_DAG_ID

    settings = load_settings(lake=lake, tuning_seconds=seconds)
    day = parse_run_date(date_, "--date") if date_ else dt.datetime.now(dt.UTC).date()
    preflight.check(settings)
    conf = {"run_date": day.isoformat(), "tuning_seconds": settings.tuning_seconds}
    run = f"{day.isoformat()}T00:00:00+00:00=" + json.dumps(conf)
    log.info("lake %s; Airflow home %s; budget %d s", settings.lake, airflow_home(), settings.tuning_seconds)
    log_file = airflow_home() / "logs" / f"setlist-tune-{day.isoformat()}.log"
    return _run_in_airflow(settings, ["-m", "include.orchestration.airflow_run", TUNING_DAG_ID, run], log_file)


def sql_log() -> Path:
    """Where `setlist sql`'s Spark driver writes its log."""
    from include.orchestration.airflow_env import airflow_home

    return airflow_home() / "logs" / "setlist-sql.log"


def _spark_query(query: str, lake: str) -> tuple[list[str], list[tuple[object, ...]]]:
    from include.core import tables
    from include.lake import delta_io, gold_state
    from include.lake.spark import get_spark

    # A session of its own: tables are registered by name in the session's catalog, which a shared Spark
    # Connect server would share between lakes. Its JVM writes its log (a failed query's stack trace among it)
    # to a file, not over the one-line error on the terminal.
    with processes.stderr_to(sql_log()):
        settings = load_settings(lake=lake, spark_mode="submit")
        spark = get_spark("setlist-sql", settings, log_level="ERROR")
    from pyspark.logger import PySparkLogger

    # pyspark logs a failed query once more, as JSON with the Java stack trace, to stderr: to the file instead
    context_log = PySparkLogger.getLogger("SQLQueryContextLogger")
    for handler in list(context_log.handlers):
        context_log.removeHandler(handler)
    context_log.addHandler(logging.FileHandler(sql_log()))
    context_log.propagate = False
    only = tables.referenced_tables(query)
    views = gold_state.views(spark, lake, settings.als_value("alpha")) if any(t.merged_on_read for t in only) else {}
    delta_io.register_tables(spark, lake, only=only, views=views)
    result = spark.sql(query)
    return result.columns, [tuple(r) for r in result.collect()]


# A query may start with a comment ("-- ..."): not an option, so unknown "--" words are the query's.
@cli.command(
    help="run SQL over bronze.*, silver.*, gold.*, ops.* and print the result",
    context_settings={"ignore_unknown_options": True},
)
@LAKE
@FORMAT
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="spark",
    show_default=True,
    help="spark (Spark SQL over Delta) or duckdb (DuckDB over delta-rs snapshots: no JVM, starts in a second)",
)
@click.argument("query", type=click.UNPROCESSED)
def sql(lake: str | None, fmt: str, engine: str, query: str) -> int:
    from include.core import tables
    from include.serving import lookup

    if unknown := tables.unknown_tables(query):  # before an engine starts: Spark would take seconds to say it
        known = ", ".join(tables.SQL_NAMES)
        print(f"setlist sql: no table {', '.join(unknown)}; the lake's tables are {known}", file=sys.stderr)
        return 2
    settings = load_settings(lake=lake)
    execute = _spark_query if engine == "spark" else lookup.query
    try:
        columns, rows = execute(query, settings.lake)
    except Exception as exc:  # the engine's own message (parse error, unknown column, ...) is the useful part
        message = str(exc).strip().splitlines()[0]
        where = f" (Spark's log: {sql_log()})" if engine == "spark" else ""
        print(f"setlist sql: {message}{where}", file=sys.stderr)
        return 2
    print_rows(columns, rows, fmt)
    return 0


@cli.command(help="one user's top K from the newest gold.recommendations run (delta-rs, no JVM)")
@LAKE
@click.option("--user", required=True)
@click.option("--k", type=int, default=10, show_default=True)
@FORMAT
@click.option(
    "--genre",
    multiple=True,
    help="a new user's declared genre (repeatable): their popular tracks come first in the fallback list",
)
def recs(lake: str | None, user: str, k: int, fmt: str, genre: tuple[str, ...]) -> int:
    from include.serving import lookup

    check_range("--k", k, *RANGES["top_k"])
    settings = load_settings(lake=lake)
    try:
        rows = lookup.get_recommendations(user, k, settings.lake)
    except LookupError as exc:
        print(f"setlist recs: {exc}", file=sys.stderr)
        return 1
    if not rows:
        rows = lookup.popular(k, settings.lake, genre)
        note = "the most popular tracks instead" if rows else "and there is no popularity table yet"
        print(f"setlist recs: user {user!r} is not in the newest run; {note}", file=sys.stderr)
        if not rows:
            return 1
    print_rows(list(rows[0]), [tuple(r.values()) for r in rows], fmt)
    return 0


def _port(default: int) -> Callable[[Callable[..., int]], Callable[..., int]]:
    return click.option("--port", type=int, default=default, show_default=True, help="on 127.0.0.1")


@cli.command("sql-server", help="serve the lake tables over JDBC/ODBC (Spark Thrift server, loopback, login)")
@LAKE
@_port(10000)
def sql_server_command(lake: str | None, port: int) -> int:
    from include.serving import sql_server

    sql_server.serve(load_settings(lake=lake), port)
    return 0


@cli.command("spark-server", help="a warm Spark the jobs join as clients (Spark Connect server; loopback, token)")
@LAKE
@_port(15002)
def spark_server_command(lake: str | None, port: int) -> int:
    from include.orchestration import spark_server

    return spark_server.serve(load_settings(lake=lake), port)


@cli.command("spark-cluster", help="a Spark standalone master and workers on this machine (loopback, shared secret)")
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--worker-cores", type=click.IntRange(1, 256), default=1, show_default=True)
@click.option("--worker-memory", default="2g", show_default=True, help="each worker's memory for executors")
@click.option("--dir", "root", default=str(PROJECT_ROOT / ".build" / "spark-cluster"), show_default=True,
              help="logs and the workers' work directories")  # fmt: skip
@_port(7077)
def spark_cluster_command(workers: int, worker_cores: int, worker_memory: str, root: str, port: int) -> int:
    from include.orchestration import spark_cluster

    return spark_cluster.serve(Path(root), workers, worker_cores, worker_memory, port)


@cli.command("airflow", help="Airflow's UI/API server, scheduler and DAG processor (loopback, login)")
@LAKE
@_port(8080)
def airflow_command(lake: str | None, port: int) -> int:
    from include.orchestration import airflow_server

    return airflow_server.serve(load_settings(lake=lake), port)


EXPLORER_APP = Path(__file__).resolve().parents[1] / "serving" / "explorer_app.py"


def explorer_command(port: int) -> list[str]:
    """Streamlit serving the explorer on 127.0.0.1 only, headless, with no usage statistics sent."""
    return [
        sys.executable, "-m", "streamlit", "run", str(EXPLORER_APP),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
    ]  # fmt: skip


@cli.command(help="the recommendations explorer web page (Streamlit, loopback, login)")
@LAKE
@_port(8501)
def explorer(lake: str | None, port: int) -> int:
    from include.core import credentials

    check_range("--port", port, 1024, 65535)
    settings = load_settings(lake=lake)
    credentials.password("explorer", "SETLIST_EXPLORER_PASSWORD")  # a generated one is shown here, once
    log.info(
        "explorer on http://127.0.0.1:%d/ over %s; password: $SETLIST_EXPLORER_PASSWORD or %s; Ctrl-C stops it",
        port,
        settings.lake,
        credentials.password_file("explorer"),
    )
    try:
        return subprocess.call(explorer_command(port), env={**os.environ, "SETLIST_LAKE": settings.lake})
    except KeyboardInterrupt:
        return 0


cli.add_command(evaluate.command)
# Commands that start servers or runs: each runs in a guard that ends everything it started when the command
# ends, however it ends (include/core/processes.py).
SERVER_COMMANDS = ("run", "airflow", "spark-server", "spark-cluster", "sql-server", "explorer")


def main(argv: Sequence[str] | None = None) -> int:
    """``setlist``: the exit code of the command (2 for invalid input, with one line naming the field)."""
    setlist_log.setup()
    from include.lake.spark_conf import MissingJarsError

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SERVER_COMMANDS and "--help" not in args and "-h" not in args:
        code = processes.guarded(args)  # in the first process: the command's exit code, run by its guard
        if code is not None:
            return code
    try:
        return int(invoke(cli, args, "setlist") or 0)
    except CommandExit as exc:
        return exc.code
    except (click.Abort, KeyboardInterrupt):
        return 130
    except (ConfigError, MissingJarsError) as exc:
        print(f"setlist {args[0] if args else ''}: {exc}", file=sys.stderr)
        return 2
    except processes.ServerError as exc:  # a server it started did not start or stopped: the message says why
        print(f"setlist {args[0]}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
