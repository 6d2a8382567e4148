"""``setlist``: generate sample data, run the nightly DAG through Airflow, and query the lake with SQL.

generate writes landing CSV; run drives Airflow (which submits the Spark jobs); sql reads Delta tables.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from include.config import ConfigError, Settings, load_settings, parse_run_date
from include.dag_spec import TRAIN_POLICIES

FORMATS = ("table", "csv", "json")


def _generate(args: argparse.Namespace) -> int:
    from include.generate import GenerateSpec, generate

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


def _airflow(settings: Settings, *airflow_args: str, log_file: Path | None = None) -> int:
    """Run the ``airflow`` CLI of this environment; with ``log_file``, keep the full log there and print progress."""
    from include.airflow_env import airflow_env

    airflow = str(Path(sys.executable).parent / "airflow")
    env = airflow_env(settings)
    if log_file is None:
        quiet = subprocess.DEVNULL
        return subprocess.call([airflow, *airflow_args], env=env, stdout=quiet, stderr=quiet)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    with open(log_file, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [airflow, *airflow_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = [*tail[-59:], line.rstrip()]
            shown = progress_line(line)
            if shown:
                print(shown, flush=True)
        code = proc.wait()
    if code != 0:
        print("\n".join(["--- last lines of the Airflow log ---", *tail]), file=sys.stderr)
        print(f"full log: {log_file}", file=sys.stderr)
    return code


_PROGRESS = re.compile(r"(\[setlist\].*?)\s*(\[airflow[^\]]*\]\s*loc=\S+)?$")
_TASK = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_SKIPPED = re.compile(r"\[DAG TEST\] .*task_id=(\S+).*(?:skipped|SKIPPED)")


def progress_line(line: str) -> str | None:
    """The part of an Airflow log line a person follows: Setlist progress, task starts, failures."""
    if m := _PROGRESS.search(line):
        return "    " + m.group(1)
    if m := _TASK.search(line):
        return f"  task {m.group(1)}"
    if m := _SKIPPED.search(line):
        return f"  task {m.group(1)} skipped"
    if "Marking task as FAILED" in line or "Task failed with exception" in line:
        return "  " + line.strip()[:300]
    return None


def ensure_airflow_db(settings: Settings) -> None:
    """Create or upgrade the Airflow metadata database (idempotent; skipped when it is current)."""
    if _airflow(settings, "db", "check-migrations", "--migration-wait-timeout", "0") == 0:
        return
    from include.airflow_env import airflow_home

    print("[setlist] creating the Airflow metadata database (once)", flush=True)
    code = _airflow(settings, "db", "migrate", log_file=airflow_home() / "logs" / "db-migrate.log")
    if code != 0:
        raise ConfigError(f"airflow db migrate failed with exit code {code}")


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(lake=args.lake)
    dates = [parse_run_date(d, "--date") for d in args.date]
    ensure_airflow_db(settings)
    from include.dag_spec import DAG_ID

    for day in dates:
        # Like a backfill, several dates train once: on the newest one (--train overrides for all dates).
        train = args.train or ("auto" if day == max(dates) else "never")
        print(f"[setlist] run {DAG_ID} for {day} through Airflow (lake {settings.lake}, train={train})", flush=True)
        conf = json.dumps({"run_date": day.isoformat(), "train": train})
        from include.airflow_env import airflow_home

        log_file = airflow_home() / "logs" / f"setlist-run-{day.isoformat()}.log"
        code = _airflow(settings, "dags", "test", DAG_ID, day.isoformat(), "--conf", conf, log_file=log_file)
        if code != 0:
            print(f"[setlist] run {day}: the DAG run failed (exit {code})", file=sys.stderr)
            return code
    return 0


def _sql(args: argparse.Namespace) -> int:
    from include import delta_io
    from include.spark import get_spark

    settings = load_settings(lake=args.lake)
    spark = get_spark("setlist-sql", settings, log_level="ERROR")
    delta_io.register_tables(spark, settings.lake, only=delta_io.referenced_tables(args.query))
    try:
        result = spark.sql(args.query)
    except Exception as exc:
        message = str(exc).splitlines()[0]
        print(f"setlist sql: {message}", file=sys.stderr)
        return 2
    rows = result.collect()
    columns = result.columns
    if args.format == "json":
        for row in rows:
            print(json.dumps(row.asDict(recursive=True), default=str))
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[("" if v is None else v) for v in row] for row in rows])
    else:
        print(format_table(columns, [list(r) for r in rows]))
    return 0


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    fmt = "| " + " | ".join("{:<" + str(w) + "}" for w in widths) + " |"
    out = [line, fmt.format(*columns), line, *[fmt.format(*r) for r in cells], line, f"({len(cells)} rows)"]
    return "\n".join(out)


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
    q.add_argument("query")
    q.set_defaults(func=_sql)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"setlist {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
