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

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from include.core import credentials
from include.core.config import Settings, check_range
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


def start(settings: Settings, port: int) -> list[subprocess.Popen[bytes]]:
    """Prepare the database and pool, then start every component in its own process group; in connect mode
    without ``SETLIST_SPARK_REMOTE``, also the warm Spark the tasks submit to (the last process returned)."""
    from include.orchestration import spark_server

    check_range("--port", port, 1024, 65535)
    password = credentials.password("airflow", "SETLIST_AIRFLOW_PASSWORD")
    spark = None
    logs = airflow_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if settings.spark_mode == "connect" and not settings.spark_remote:
        spark = spark_server.spawn(settings, log_file=logs / "spark-connect.log")  # starts while Airflow does
        settings = settings.with_overrides(spark_remote=spark.url)
    env = server_env(settings, port, write_auth_file(password))
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
        raise RuntimeError(f"preparing the Airflow database failed; see {logs / 'prepare.log'}")
    airflow = str(Path(sys.executable).parent / "airflow")
    procs = []
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
        except RuntimeError:
            stop(procs)
            raise
        procs.append(spark.proc)
        log.info("warm Spark (Spark Connect) for the tasks on 127.0.0.1:%d", spark.port)
    log.info("Airflow on http://127.0.0.1:%d/ (user %s; password: $SETLIST_AIRFLOW_PASSWORD or", port, ADMIN)
    log.info("  %s); component logs in %s; Ctrl-C stops it", credentials.password_file("airflow"), logs)
    return procs


def stop(procs: Sequence[subprocess.Popen[Any]]) -> None:
    """Stop processes started with ``start_new_session=True`` and whatever they started (task runs,
    spark-submit): SIGTERM to each process group, SIGKILL to any still running a minute later."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def serve(settings: Settings, port: int = DEFAULT_PORT) -> int:
    """Run Airflow until SIGINT or SIGTERM, or until a component exits (its exit code is returned)."""
    procs = start(settings, port)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    exited = None
    while not done.wait(2.0):
        exited = next((p for p in procs if p.poll() is not None), None)
        if exited is not None:
            index = procs.index(exited)
            component = COMPONENTS[index] if index < len(COMPONENTS) else "spark-connect"
            log.info("Airflow %s exited with %s; stopping the others", component, exited.returncode)
            break
    stop(procs)
    return exited.returncode if exited is not None else 0
