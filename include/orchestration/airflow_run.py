"""Run a DAG for several dates in one Airflow process, exactly as ``airflow dags test`` runs one date.

Usage (``setlist run`` calls it in the Airflow environment; ``setlist airflow`` calls ``prepare`` before it
starts the scheduler)::

    python -m include.orchestration.airflow_run DAG_ID LOGICAL_DATE=CONF_JSON [LOGICAL_DATE=CONF_JSON ...]
    python -m include.orchestration.airflow_run prepare

Creates or upgrades the metadata database when needed and sets the Spark pool, then runs each date in
order (each once no other run of the DAG, the scheduler's or a triggered one, is processing that date) through
Airflow's own ``dags test`` command (the real scheduler loop of ``DAG.test`` and the real
operators) and stops at the first failed run. One process pays Airflow's start-up (CLI imports, the
in-process execution API, several seconds each) once instead of once per date. Reads and writes what the DAG runs do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

LOGGER = "include.orchestration.airflow_run"  # by name, not __name__: it runs as __main__ (python -m)
log = logging.getLogger(LOGGER)


def _command(parser: object, *argv: str) -> int:
    """One Airflow CLI command in this process; its exit code (Airflow commands end with SystemExit)."""
    args = parser.parse_args(list(argv))  # type: ignore[attr-defined]
    try:
        args.func(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def prepare(parser: object) -> int:
    """Create or upgrade the metadata database when needed; set the pool every Spark task runs in."""
    from include.orchestration.dag_spec import SPARK_POOL, SPARK_POOL_SLOTS

    try:
        current = _command(parser, "db", "check-migrations", "--migration-wait-timeout", "0") == 0
    except TimeoutError:  # migrations pending, or no database yet
        current = False
    if not current:
        log.info("creating the Airflow metadata database (once)")
        if code := _command(parser, "db", "migrate"):
            return code
    retire_stale_assets()
    why = "Spark jobs: one at a time, so two never fight over the cores"
    return _command(parser, "pools", "set", SPARK_POOL, str(SPARK_POOL_SLOTS), why)


def retire_stale_assets() -> int:
    """Deactivate Setlist assets whose name the DAGs still use with another URI (the lake-path URIs of earlier
    versions): Airflow activates an asset only when no active one has its name, and only the scheduler retires
    unreferenced ones, so without this a ``dags test`` run would fail on them. Returns how many were retired."""
    from airflow.models.asset import AssetActive
    from airflow.utils.session import create_session

    from include.orchestration.dag_spec import OUTLETS, asset_uri

    current = {t.sql_name: asset_uri(t) for tables in OUTLETS.values() for t in tables}
    with create_session() as session:
        stale = [
            a for a in session.query(AssetActive).filter(AssetActive.name.in_(current)) if a.uri != current[a.name]
        ]
        for asset in stale:
            log.info("retiring the asset %s at %s (now %s)", asset.name, asset.uri, current[asset.name])
            session.delete(asset)
    return len(stale)


LOCK_NAME = "setlist-run.lock"


@contextlib.contextmanager
def one_at_a_time(lock: Path, holder: str) -> Iterator[str]:
    """Hold an exclusive lock on ``lock`` (waiting, with one line, while another process holds it); yields
    what the previous holder wrote there if it ended without clearing it (it was killed), else "".

    ``dags test`` replaces any run of the DAG with the same logical date, so two ``setlist run`` in one Airflow
    home would delete each other's runs mid-flight; the second waits for the first instead. The lock is the
    kernel's (``flock``): a process that dies, even by SIGKILL, releases it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            log.info("waiting for %s to finish (it holds %s)", fh.read().strip() or "another setlist run", lock)
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        left = fh.read().strip()
        fh.seek(0)
        fh.truncate()
        fh.write(holder)
        fh.flush()
        try:
            yield left
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def fail_dead_test_runs(dag_id: str, holder: str) -> list[str]:
    """Mark failed the queued or running runs of ``dag_id`` that ``dags test`` made (``setlist run``): the caller
    holds the run lock, so the process that ran them is gone and nothing will ever finish them. ``holder`` is
    what that process left in the lock ("setlist run (pid N) ..."), "" if unknown. Their unfinished task
    instances fail too. Returns one line per run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType

    from include.orchestration.dag_spec import run_date_of

    pid = re.search(r"\(pid (\d+)\)", holder)
    who = f"its setlist run (pid {pid.group(1)}) is gone" if pid else "the setlist run that started it is gone"
    said = []
    with create_session() as session:
        dead = session.query(DagRun).filter(
            DagRun.dag_id == dag_id,
            DagRun.state.in_((DagRunState.QUEUED, DagRunState.RUNNING)),
            DagRun.triggered_by == DagRunTriggeredByType.TEST,
        )
        for run in dead:
            for ti in run.get_task_instances(state=State.unfinished, session=session):
                ti.set_state(TaskInstanceState.FAILED, session=session)
            run.set_state(DagRunState.FAILED)
            day = run_date_of(run.conf or {}, run.logical_date)
            said.append(f"marking {run.run_id} of {day} failed: {who}")
            log.warning(said[-1])
    return said


SCHEDULER_PROCESS = re.compile(r"\bairflow[ :]+scheduler\b")  # its command line, or the title it sets


def end_dead_schedulers() -> list[str]:
    """Mark failed the scheduler jobs of this machine that the metadata database still calls running when no
    Airflow scheduler runs here (``setlist airflow`` was killed with them): the next scheduler's start-up then
    resets their queued and running task instances at once, so they run again, instead of after Airflow's
    heartbeat time-outs (5 minutes). Returns one line per job."""
    import psutil
    from airflow.jobs.job import Job, JobState
    from airflow.utils.net import get_hostname
    from airflow.utils.session import create_session

    for proc in psutil.process_iter(["cmdline"]):
        if SCHEDULER_PROCESS.search(" ".join(proc.info["cmdline"] or [])):
            return []  # a live scheduler here: leave its jobs to Airflow
    said = []
    with create_session() as session:
        stale = session.query(Job).filter(
            Job.job_type == "SchedulerJob", Job.state == JobState.RUNNING, Job.hostname == get_hostname()
        )
        for job in stale:
            job.state = JobState.FAILED
            beat = f"{job.latest_heartbeat:%H:%M:%S} UTC" if job.latest_heartbeat else "never"
            said.append(f"ending scheduler job {job.id} of an Airflow that is gone (last heartbeat {beat}):")
            said[-1] += " its running tasks run again"
            log.warning(said[-1])
    return said


ACTIVE_POLL_S = 10.0


def active_runs(dag_id: str, run_date: str, logical_date: dt.datetime) -> list[str]:
    """The queued or running runs of ``dag_id`` (the scheduler's, or triggered from the UI or the REST API) that
    process ``run_date`` or have ``logical_date``, which ``dags test`` would delete under them: ``run_id (state)``
    each."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    from include.core.config import ConfigError
    from include.orchestration.dag_spec import run_date_of

    found = []
    with create_session() as session:
        active = session.query(DagRun).filter(
            DagRun.dag_id == dag_id, DagRun.state.in_((DagRunState.QUEUED, DagRunState.RUNNING))
        )
        for run in active:
            try:
                day: str | None = run_date_of(run.conf or {}, run.logical_date)
            except ConfigError:  # a run that names no day fails in its first task; it writes nothing
                day = None
            if day == run_date or run.logical_date == logical_date:
                found.append(f"{run.run_id} ({run.state})")
    return found


class WaitedTooLong(RuntimeError):
    """Another run of the date was still running when the wait's limit was reached."""


def wait_for_active_runs(
    dag_id: str, run_date: str, logical_date: dt.datetime, limit_s: float, poll: float = ACTIVE_POLL_S
) -> float:
    """Wait while another run of ``dag_id`` processes ``run_date`` (saying so in one line each time the set of
    runs changes), at most ``limit_s``; the seconds waited. Both would write the same partitions, and
    ``dags test`` replaces a run with its logical date even while that run is running."""
    started, said = time.monotonic(), None
    while runs := active_runs(dag_id, run_date, logical_date):
        waited = time.monotonic() - started
        if waited >= limit_s:
            raise WaitedTooLong(
                f"gave up after {waited / 60:.0f} min waiting for {', '.join(runs)} of {dag_id} for {run_date};"
                f" stop it in Airflow, or wait longer (SETLIST_RUN_WAIT_MINUTES, now {limit_s / 60:.0f})"
            )
        if runs != said:
            log.info("waiting for %s of %s for %s to finish", ", ".join(runs), dag_id, run_date)
            said = runs
        time.sleep(poll)
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    dag_id, *runs = list(sys.argv[1:] if argv is None else argv)
    from airflow.cli.cli_parser import get_parser

    from include.core.log import setup
    from include.orchestration.airflow_env import airflow_home

    parser = get_parser()
    setup()  # after Airflow's own logging set-up
    days = ", ".join(run.split("T", 1)[0] for run in runs)
    me = f"(pid {os.getpid()})"
    holder = f"setlist run {me} of {dag_id} for {days}" if runs else f"setlist airflow's start {me}"
    with one_at_a_time(airflow_home() / LOCK_NAME, holder) as left:
        try:
            return _run_all(parser, dag_id, runs, left)
        except WaitedTooLong as exc:
            setup()
            log.error("%s", exc)
            return 1


def _run_all(parser: object, dag_id: str, runs: Sequence[str], left: str) -> int:
    from include.core.config import load_settings
    from include.core.log import setup
    from include.orchestration.dag_spec import DAG_ID

    if code := prepare(parser):
        return code
    setup()  # again: Airflow's commands set their logging up anew
    fail_dead_test_runs(DAG_ID, left)  # this process holds the run lock: whoever ran them is gone
    if dag_id == "prepare":  # before `setlist airflow` starts its scheduler
        end_dead_schedulers()
        return 0
    limit_s = load_settings().run_wait_minutes * 60.0
    for run in runs:
        day, conf = run.split("=", 1)
        setup()  # again: each `dags test` sets Airflow's logging up anew
        wait_for_active_runs(dag_id, json.loads(conf)["run_date"], dt.datetime.fromisoformat(day), limit_s)
        log.info("run %s for %s (conf %s)", dag_id, day, conf)
        if code := _command(parser, "dags", "test", dag_id, day, "--conf", conf):
            setup()
            log.error("run %s: the DAG run failed", day)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
