"""``setlist``: generate sample data, run the nightly DAG through Airflow, and query the lake with SQL.

generate writes landing CSV; run drives Airflow (which submits the Spark jobs); sql reads Delta tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from include.cli.output import FORMATS, print_rows
from include.core import log as setlist_log
from include.core.config import RANGES, ConfigError, Settings, check_range, load_settings, parse_run_date
from include.orchestration.dag_spec import TRAIN_POLICIES

log = logging.getLogger(__name__)

ENGINES = ("spark", "duckdb")


def _generate(args: argparse.Namespace) -> int:
    from include.cli.generate import GenerateSpec, generate

    settings = load_settings(lake=args.lake)
    spec = GenerateSpec(
        lake=settings.lake,
        start=parse_run_date(args.start, "--start"),
        days=args.days,
        users=args.users,
        tracks=args.tracks,
        events_per_day=args.events_per_day,
        seed=args.seed,
    )
    generate(spec)
    return 0


def _run_in_airflow(settings: Settings, args: Sequence[str], log_file: Path) -> int:
    """Run ``python args...`` in the Airflow environment, with a warm Spark for its Spark tasks (unless
    ``spark_mode`` is submit); keep the full log in ``log_file``, print progress."""
    from include.orchestration import spark_server
    from include.orchestration.airflow_env import airflow_env

    with spark_server.running(settings) as client:
        if client:
            settings = settings.with_overrides(spark_remote=client["SETLIST_SPARK_REMOTE"])
        return _logged(args, {**airflow_env(settings), **client}, log_file)


def _logged(args: Sequence[str], env: dict[str, str], log_file: Path) -> int:
    """Run ``python args...``: its output goes to ``log_file`` (and its last lines to stderr if it fails);
    what the person follows is the Setlist log records of it and of every task and job it starts, read back
    as events from ``<log_file>.events`` while it runs."""
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
        offset = 0
        while drain.is_alive():
            drain.join(0.5)
            offset = _show_events(events, offset)
        code = proc.wait()
        _show_events(events, offset)
    if code != 0:
        print("\n".join(["--- last lines of the Airflow log ---", *tail]), file=sys.stderr)
        print(f"full log: {log_file}", file=sys.stderr)
    return code


def _copy(lines: Iterable[str], out: TextIO, tail: deque[str]) -> None:
    for line in lines:
        out.write(line)
        tail.append(line.rstrip())


RUN_LOGGER = "include.orchestration.airflow_run"


def _show_events(path: Path, offset: int) -> int:
    """Print the events appended since ``offset``: a DAG run's own lines flush left, its tasks' indented."""
    events, offset = setlist_log.read_events(path, offset)
    for event in events:
        indent = "" if event["logger"] == RUN_LOGGER else "    "
        print(f"{indent}[setlist] {event['message']}", flush=True)
    return offset


def _run(args: argparse.Namespace) -> int:
    from include.orchestration.airflow_env import airflow_home
    from include.orchestration.dag_spec import DAG_ID

    settings = load_settings(lake=args.lake)
    dates = [parse_run_date(d, "--date") for d in args.date]
    runs = []
    for day in dates:
        # Like a backfill, several dates train once: on the newest one (--train overrides for all dates).
        train = args.train or ("auto" if day == max(dates) else "never")
        # the logical date a scheduled run of the day has (the day at the nightly hour), so a later backfill
        # or scheduled run sees this run as the day's run
        logical = f"{day.isoformat()}T{settings.nightly_hour:02d}:00:00+00:00"
        runs.append(f"{logical}=" + json.dumps({"run_date": day.isoformat(), "train": train}))
    log.info("lake %s; Airflow home %s", settings.lake, airflow_home())
    span = dates[0].isoformat() + (f"_{dates[-1].isoformat()}" if len(dates) > 1 else "")
    log_file = airflow_home() / "logs" / f"setlist-run-{span}.log"
    return _run_in_airflow(settings, ["-m", "include.orchestration.airflow_run", DAG_ID, *runs], log_file)


def _spark_query(query: str, lake: str) -> tuple[list[str], list[tuple[object, ...]]]:
    from include.core import tables
    from include.lake import delta_io
    from include.lake.spark import get_spark

    # A session of its own: tables are registered by name in the session's catalog, which a shared Spark
    # Connect server would share between lakes.
    spark = get_spark("setlist-sql", load_settings(lake=lake, spark_mode="submit"), log_level="ERROR")
    delta_io.register_tables(spark, lake, only=tables.referenced_tables(query))
    result = spark.sql(query)
    return result.columns, [tuple(r) for r in result.collect()]


def _sql(args: argparse.Namespace) -> int:
    from include.serving import lookup

    settings = load_settings(lake=args.lake)
    run = _spark_query if args.engine == "spark" else lookup.query
    try:
        columns, rows = run(args.query, settings.lake)
    except Exception as exc:  # the engine's own message (parse error, unknown column, ...) is the useful part
        message = str(exc).strip().splitlines()[0]
        print(f"setlist sql: {message}", file=sys.stderr)
        return 2
    print_rows(columns, rows, args.format)
    return 0


def _recs(args: argparse.Namespace) -> int:
    from include.serving import lookup

    check_range("--k", args.k, *RANGES["top_k"])
    settings = load_settings(lake=args.lake)
    try:
        recs = lookup.get_recommendations(args.user, args.k, settings.lake)
    except LookupError as exc:
        print(f"setlist recs: {exc}", file=sys.stderr)
        return 1
    if not recs:
        recs = lookup.popular(args.k, settings.lake, args.genre or ())
        note = "the most popular tracks instead" if recs else "and there is no popularity table yet"
        print(f"setlist recs: user {args.user!r} is not in the newest run; {note}", file=sys.stderr)
        if not recs:
            return 1
    print_rows(list(recs[0]), [tuple(r.values()) for r in recs], args.format)
    return 0


def _sql_server(args: argparse.Namespace) -> int:
    from include.serving import sql_server

    sql_server.serve(load_settings(lake=args.lake), args.port)
    return 0


def _spark_server(args: argparse.Namespace) -> int:
    from include.orchestration import spark_server

    return spark_server.serve(load_settings(lake=args.lake), args.port)


def _airflow(args: argparse.Namespace) -> int:
    from include.orchestration import airflow_server

    return airflow_server.serve(load_settings(lake=args.lake), args.port)


EXPLORER_APP = Path(__file__).resolve().parents[1] / "serving" / "explorer_app.py"


def explorer_command(port: int) -> list[str]:
    """Streamlit serving the explorer on 127.0.0.1 only, headless, with no usage statistics sent."""
    return [
        sys.executable, "-m", "streamlit", "run", str(EXPLORER_APP),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def _explorer(args: argparse.Namespace) -> int:
    from include.core import credentials

    check_range("--port", args.port, 1024, 65535)
    settings = load_settings(lake=args.lake)
    credentials.password("explorer", "SETLIST_EXPLORER_PASSWORD")  # a generated one is shown here, once
    log.info(
        "explorer on http://127.0.0.1:%d/ over %s; password: $SETLIST_EXPLORER_PASSWORD or %s; Ctrl-C stops it",
        args.port,
        settings.lake,
        credentials.password_file("explorer"),
    )
    try:
        return subprocess.call(explorer_command(args.port), env={**os.environ, "SETLIST_LAKE": settings.lake})
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="setlist", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write sample landing CSV (catalog + daily events)")
    g.add_argument("--lake", default=None)
    g.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    g.add_argument("--days", type=int, default=3)
    g.add_argument("--users", type=int, default=500)
    g.add_argument("--tracks", type=int, default=2000)
    g.add_argument("--events-per-day", type=int, default=20_000)
    g.add_argument("--seed", type=int, default=42)
    g.set_defaults(func=_generate)

    r = sub.add_parser("run", help="run the nightly DAG through Airflow for one or more dates")
    r.add_argument("--lake", default=None)
    r.add_argument("--date", required=True, nargs="+", help="YYYY-MM-DD (several: one run each, in order)")
    r.add_argument(
        "--train",
        choices=TRAIN_POLICIES,
        default=None,
        help="the DAG's train param for every date (default: auto for the newest date, never for the others)",
    )
    r.set_defaults(func=_run)

    q = sub.add_parser("sql", help="run SQL over bronze.*, silver.*, gold.*, ops.* and print the result")
    q.add_argument("--lake", default=None)
    q.add_argument("--format", choices=FORMATS, default="table")
    q.add_argument(
        "--engine",
        choices=ENGINES,
        default="spark",
        help="spark (Spark SQL over Delta) or duckdb (DuckDB over delta-rs snapshots: no JVM, starts in a second)",
    )
    q.add_argument("query")
    q.set_defaults(func=_sql)

    servers = (
        (
            "sql-server",
            "serve the lake tables over JDBC/ODBC (Spark Thrift server, loopback, login)",
            10000,
            _sql_server,
        ),
        ("airflow", "Airflow's UI/API server, scheduler and DAG processor (loopback, login)", 8080, _airflow),
        (
            "spark-server",
            "a warm Spark the jobs join as clients (Spark Connect server; loopback, token)",
            15002,
            _spark_server,
        ),
        ("explorer", "the recommendations explorer web page (Streamlit, loopback, login)", 8501, _explorer),
    )
    for name, help_text, port, func in servers:
        v = sub.add_parser(name, help=help_text)
        v.add_argument("--lake", default=None)
        v.add_argument("--port", type=int, default=port)
        v.set_defaults(func=func)

    e = sub.add_parser(
        "evaluate",
        help="load a ratings/plays file through a source mapping and the pipeline, then evaluate ALS on it",
        add_help=False,
    )
    e.add_argument("args", nargs="*", help="see `setlist evaluate --help`")

    k = sub.add_parser("recs", help="one user's top K from the newest gold.recommendations run (delta-rs, no JVM)")
    k.add_argument("--lake", default=None)
    k.add_argument("--user", required=True)
    k.add_argument("--k", type=int, default=10)
    k.add_argument("--format", choices=FORMATS, default="table")
    k.add_argument(
        "--genre",
        action="append",
        help="a new user's declared genre (repeatable): their popular tracks come first in the fallback list",
    )
    k.set_defaults(func=_recs)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    setlist_log.setup()
    if argv[:1] == ["evaluate"]:  # its own parser: its options are not the top-level parser's
        from include.cli import evaluate

        return evaluate.main(argv[1:])
    args = build_parser().parse_args(argv)
    from include.lake.spark_conf import MissingJarsError

    try:
        return int(args.func(args))
    except (ConfigError, MissingJarsError) as exc:
        print(f"setlist {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
