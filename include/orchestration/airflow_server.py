"""``make airflow`` (``setlist airflow``): Airflow 3 as its users run it, for this project's DAGs.

Starts the API server (UI and REST API), the scheduler (LocalExecutor) and the DAG processor on 127.0.0.1,
after creating or upgrading the metadata database and setting the Spark pool (:mod:`include.orchestration.airflow_run`).
Login: user ``admin`` with ``SETLIST_AIRFLOW_PASSWORD``, or, when that is unset, a password generated once,
stored in ``~/.config/setlist/airflow-password`` (mode 600, outside the repository) and printed that once.
The execution API URL always follows the API port, so task runs reach the server on a changed port.

Reads settings; writes the metadata database and logs under ``AIRFLOW_HOME`` (default ``.airflow``), each
component's output to ``<AIRFLOW_HOME>/logs/<component>.log``, and the auth manager's password file under
``~/.config/setlist``. Stops every component on SIGINT or SIGTERM, or when one of them exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from include.core import credentials, processes
from include.core.config import ConfigError, Settings, check_range
from include.orchestration.airflow_env import airflow_env, airflow_home

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
ADMIN = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


class RestClient:
    """Airflow's REST API (``/api/v2``) as a user calls it: a token from ``/auth/token``, then JSON calls."""

    def __init__(self, url: str, password: str, user: str = ADMIN) -> None:
        self.url, self.user, self.password = url, user, password
        self.token = ""

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if path != "/auth/token":
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(), headers=headers
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return dict(json.loads(response.read() or b"{}"))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.token:
            login = {"username": self.user, "password": self.password}
            self.token = str(self._request("POST", "/auth/token", login)["access_token"])
        return self._request(method, path, body)


def write_auth_file(password: str) -> Path:
    """The simple auth manager's password file (its own format, ``{user: password}``), mode 600, outside
    the repository."""
    path = credentials.password_file("airflow").with_name("airflow-auth-manager.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({ADMIN: password}, f)
    return path


def server_env(settings: Settings, port: int, passwords: Path) -> dict[str, str]:
    """The Airflow environment of every component: loopback, this port, one login, shared secrets."""
    env = airflow_env(settings)
    env.update(
        {
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            # Task runs report to the execution API; without this they call the default port and are refused.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__EXECUTOR": env.get("AIRFLOW__CORE__EXECUTOR") or "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": env.get("AIRFLOW__CORE__AUTH_MANAGER") or SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # Components sign and check each other's tokens: one secret for this start, shared by all of them.
            "AIRFLOW__API_AUTH__JWT_SECRET": env.get("AIRFLOW__API_AUTH__JWT_SECRET") or secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": env.get("AIRFLOW__API__SECRET_KEY") or secrets.token_urlsafe(64),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",  # it would listen on all interfaces
        }
    )
    return env


def check_port(port: int) -> None:
    """The port is allowed and free; otherwise one line naming the process that holds it (an earlier Airflow)."""
    check_range("--port", port, 1024, 65535)
    if holder := processes.port_holder(port):
        raise ConfigError(f"--port: 127.0.0.1:{port} is in use by {holder}; stop it, or choose another --port")


class Components(list[subprocess.Popen[bytes]]):
    """The started processes, in the order of :data:`COMPONENTS`, then the warm Spark's (``spark``) if any."""

    spark: Any = None  # the warm Spark's spark_server.Server


def start(settings: Settings, port: int, db_env: dict[str, str] | None = None) -> Components:
    """Prepare the database and pool, then start every component in its own process group; in connect mode
    without ``SETLIST_SPARK_REMOTE``, also the warm Spark the tasks submit to (the last process returned).
    ``db_env`` is the metadata database's connection when it is not the configured one
    (:func:`include.orchestration.metadata_db.environment`)."""
    from include.orchestration import spark_server

    check_port(port)
    password = credentials.password("airflow", "SETLIST_AIRFLOW_PASSWORD")
    spark = None
    logs = airflow_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if settings.spark_mode == "connect" and not settings.spark_remote:
        spark = spark_server.spawn(settings, log_file=logs / "spark-connect.log")  # starts while Airflow does
        settings = settings.with_overrides(spark_remote=spark.url)
    env = {**server_env(settings, port, write_auth_file(password)), **(db_env or {})}
    if spark is not None:
        env.update(spark.client_env())
    with open(logs / "prepare.log", "wb") as out:
        prepared = subprocess.run(
            [sys.executable, "-m", "include.orchestration.airflow_run", "prepare"],
            env=env,
            stdout=out,
            stderr=out,
            check=False,
        )
    if prepared.returncode:
        raise processes.ServerError(f"preparing the Airflow database failed; see {logs / 'prepare.log'}")
    airflow = str(Path(sys.executable).parent / "airflow")
    procs = Components()
    for component in COMPONENTS:
        with open(logs / f"{component}.log", "ab") as out:
            procs.append(
                subprocess.Popen(
                    [airflow, component],
                    env=env,
                    stdout=out,
                    stderr=out,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
    if spark is not None:
        try:
            spark_server.wait_ready(spark)
        except processes.ServerError:
            stop(procs)
            raise
        procs.append(spark.proc)
        procs.spark = spark
        log.info("warm Spark (Spark Connect) for the tasks on 127.0.0.1:%d", spark.port)
    log.info("Airflow on http://127.0.0.1:%d/ (user %s; password: $SETLIST_AIRFLOW_PASSWORD or", port, ADMIN)
    log.info("  %s); component logs in %s; Ctrl-C stops it", credentials.password_file("airflow"), logs)
    return procs


STOP_GRACE_S = 20.0


def stop(procs: Sequence[subprocess.Popen[Any]]) -> None:
    """Stop processes started with ``start_new_session=True`` and whatever they started (task runs,
    spark-submit): SIGTERM to each process group, SIGKILL to any still running after ``STOP_GRACE_S`` (the
    scheduler waits for running tasks, which their retries redo). Task runners in process groups of their
    own are ended by the command's guard (:mod:`include.core.processes`)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


HOME_LOCK = "setlist-airflow.lock"


@contextlib.contextmanager
def home_in_use(home: Path, holder: str) -> Iterator[None]:
    """Hold the Airflow home for one ``setlist airflow``: a second one on the same home would run a second
    scheduler over the same runs, so it stops with one line naming the first (the kernel frees the lock of a
    process that died)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / HOME_LOCK, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise ConfigError(
                f"AIRFLOW_HOME: {home} is in use by {fh.read().strip() or 'another setlist airflow'};"
                " stop it first, or set AIRFLOW_HOME to another folder"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(holder)
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def serve(settings: Settings, port: int = DEFAULT_PORT) -> int:
    """Run Airflow until SIGINT or SIGTERM, or until a component exits (its exit code is returned)."""
    from include.orchestration import metadata_db, preflight

    check_port(port)
    preflight.check(settings)
    holder = f"setlist airflow (pid {os.getpid()}) on port {port}"
    with home_in_use(airflow_home(), holder), metadata_db.environment(settings, airflow_home()) as db_env:
        return _serve(settings, port, db_env)


def _serve(settings: Settings, port: int, db_env: dict[str, str]) -> int:
    procs = start(settings, port, db_env)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    exited = None
    while not done.wait(2.0):
        exited = next((p for p in procs if p.poll() is not None), None)
        if exited is not None:
            index = procs.index(exited)
            if index < len(COMPONENTS):
                log.error("Airflow %s exited with %s; stopping the others", COMPONENTS[index], exited.returncode)
            else:
                from include.orchestration import spark_server

                log.error("%s; stopping Airflow", spark_server.why_stopped(procs.spark, started=True))
            break
    stop(procs)
    return exited.returncode if exited is not None else 0
