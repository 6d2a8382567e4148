"""A warm Spark for the DAG's tasks: a Spark Connect server that every job joins as a client.

A cold spark-submit pays for a JVM, class loading, JIT warm-up and Delta's first commit in every task; a
Connect server pays for them once. ``setlist run`` and ``setlist airflow`` start one for as long as they run
(unless ``SETLIST_SPARK_REMOTE`` names a running server, or ``SETLIST_SPARK_MODE=submit``), and
``setlist spark-server`` runs one in the foreground. The server is the Spark driver of the lake: it runs on
``settings.spark_master`` (``local[*]`` or a cluster) with Delta, the settings of :mod:`include.lake.spark_conf`
and ``driver_memory``; it listens on 127.0.0.1 only and accepts only clients that present its token
(``SPARK_CONNECT_AUTHENTICATE_TOKEN``: from the environment, else generated once and stored outside the
repository like the other servers' passwords). Spark's web UI is off: it would have no login.

Reads settings; writes the server's log to ``<AIRFLOW_HOME>/logs/spark-connect.log`` (or the given file).
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from include.core import credentials, processes
from include.core.config import ConfigError, Settings, check_range
from include.lake import job_forks
from include.lake.spark import TOKEN_VAR
from include.lake.spark_conf import spark_conf
from include.orchestration import spark_cluster
from include.orchestration.airflow_env import airflow_env, airflow_home

log = logging.getLogger(__name__)

DEFAULT_PORT = 15002
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT_S = 180.0


def token() -> str:
    """The token of a server users start (``setlist spark-server``): the environment's, else stored once."""
    return credentials.password("spark-connect", TOKEN_VAR)


def url(port: int) -> str:
    # The client sends its token over a plain channel only to "localhost" (gRPC local credentials).
    return f"sc://localhost:{port}"


def server_command(settings: Settings, port: int) -> list[str]:
    """spark-submit of the Connect server with Setlist's driver settings, on loopback, without a web UI."""
    conf = {
        **spark_conf(settings),
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.enabled": "false",
    }
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    cmd = [spark_submit, "--master", settings.spark_master, "--class", SERVER_CLASS, "--name", "setlist-spark"]
    cmd += ["--driver-memory", settings.driver_memory]
    if properties := spark_cluster.driver_properties(settings.spark_master):  # a secret to present
        cmd += ["--properties-file", str(properties)]
    for key, value in conf.items():
        if key != "spark.driver.memory":
            cmd += ["--conf", f"{key}={value}"]
    return cmd


def server_env(settings: Settings, secret: str) -> dict[str, str]:
    """The server's environment: its token, the Python its UDF workers run (this venv's), one BLAS thread
    per worker (Spark runs one worker per core: more threads would only fight over the cores)."""
    env = airflow_env(settings)
    env[TOKEN_VAR] = secret
    env["PYSPARK_PYTHON"] = settings.pyspark_python
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


@dataclass
class Server:
    """A running Connect server: its process (a process group of its own), port and token."""

    proc: subprocess.Popen[bytes]
    port: int
    token: str
    log_file: Path
    forks_socket: str  # the job fork server's, in the server's process group
    master: str = "local[*]"
    authenticates: bool = False  # whether it presents a cluster secret to its master
    log_offset: int = 0  # where this start's lines begin in the (appended) log file

    @property
    def url(self) -> str:
        return url(self.port)

    def log_tail(self, lines: int = 20) -> list[str]:
        with open(self.log_file, "rb") as fh:
            fh.seek(self.log_offset)
            return fh.read().decode(errors="replace").splitlines()[-lines:]

    def client_env(self) -> dict[str, str]:
        """What a client process needs to join this server (and to run in a child of its job fork server)."""
        return {"SETLIST_SPARK_REMOTE": self.url, TOKEN_VAR: self.token, job_forks.SOCKET_VAR: self.forks_socket}


def spawn(
    settings: Settings, port: int | None = None, log_file: Path | None = None, secret: str | None = None
) -> Server:
    """Start the server in a process group of its own and return at once (see :func:`wait_ready`). Without
    a ``secret``, the server gets a new random token that only this process and its children know. The
    server stops when the calling thread's process ends (call it from the main thread).

    The job fork server of :mod:`include.lake.job_forks` starts in the same process group, so whatever stops
    the Spark server stops it and its running jobs too (and it stops by itself when the server's process
    ends); its socket is in a new directory only this user can enter. Jobs that find no socket yet (it binds
    after its imports, a few seconds) run in their own process."""
    check_master(settings.spark_master)
    port = port or processes.free_port()
    check_range("--port", port, 1024, 65535)
    secret = secret or secrets.token_urlsafe(32)
    log_file = log_file or airflow_home() / "logs" / "spark-connect.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    forks_socket = str(Path(tempfile.mkdtemp(prefix="setlist-forks-")) / "jobs.sock")
    forks = shlex.join([sys.executable, "-m", job_forks.__name__, "--socket", forks_socket])
    # one shell starts the fork server, then becomes the Spark server: both in the server's process group
    argv = ["/bin/sh", "-c", f'{forks} & exec "$@"', "sh", *server_command(settings, port)]
    offset = log_file.stat().st_size if log_file.exists() else 0
    proc = processes.launch(argv, server_env(settings, secret), log_file)
    authenticates = spark_cluster.driver_secret(settings.spark_master) is not None
    return Server(proc, port, secret, log_file, forks_socket, settings.spark_master, authenticates, offset)


def _master_addresses(master: str) -> list[tuple[str, int]]:
    """The host and port of each master of a ``spark://`` URL (several for a standby set-up)."""
    found = []
    for part in master.removeprefix("spark://").split(","):
        host, _, port = part.partition(":")
        found.append((host, int(port) if port.isdigit() else spark_cluster.DEFAULT_PORT))
    return found


def check_remote(remote: str) -> None:
    """A Connect server named by ``SETLIST_SPARK_REMOTE`` must answer before a run starts: every task would
    otherwise fail on it, one retry after another."""
    host, _, port = remote.removeprefix("sc://").split("/", 1)[0].partition(":")
    if not _answers(int(port or DEFAULT_PORT), host):
        raise ConfigError(
            f"SETLIST_SPARK_REMOTE: no Spark Connect server answers at {remote}; start it (setlist spark-server),"
            " or unset SETLIST_SPARK_REMOTE for a warm Spark of the command's own"
        )


def check_master(master: str) -> None:
    """A ``spark://`` master that does not answer at all stops the start at once, with the setting to change
    (Spark itself would try for a minute, then stop the driver)."""
    if not master.startswith("spark://"):
        return
    if not any(_answers(port, host) for host, port in _master_addresses(master)):
        raise ConfigError(
            f"SETLIST_SPARK_MASTER: the Spark master {master} does not answer; start it, or set"
            " SETLIST_SPARK_MASTER to a running master"
        )


# What the driver's log says when its master does not take it. Each appears at its first attempt to register,
# seconds after the start; Spark itself tries for a minute before it gives up and stops the driver.
MASTER_UNREACHED = "Failed to connect to master"
MASTER_GAVE_UP = "All masters are unresponsive"
AUTH_MISMATCH = "Exception while bootstrapping client"  # the handshake failed: a wrong secret, or one not wanted
AUTH_MISSING = "Expected SaslMessage"  # the master requires a secret and the driver sent none


def master_problem(server: Server) -> str | None:
    """The one line that says why the server's master did not take its driver, once the log shows it; else
    None."""
    text = "\n".join(server.log_tail(400))
    if MASTER_UNREACHED not in text and MASTER_GAVE_UP not in text:
        return None
    master = server.master
    if AUTH_MISSING in text:
        return (
            f"the Spark master {master} requires authentication: set SETLIST_SPARK_CLUSTER_SECRET to the cluster's"
            " spark.authenticate.secret"
        )
    if AUTH_MISMATCH in text:
        advice = "(or unset it if the cluster requires none)" if server.authenticates else ""
        return (
            f"the Spark master {master} refused this driver's authentication: set SETLIST_SPARK_CLUSTER_SECRET to"
            f" the cluster's spark.authenticate.secret {advice}".rstrip()
        )
    if MASTER_GAVE_UP not in text:
        return None  # not known yet: Spark tries again
    if not any(_answers(port, host) for host, port in _master_addresses(master)):
        return f"the Spark master {master} stopped answering: start it, or set SETLIST_SPARK_MASTER to a running one"
    return f"the Spark master {master} did not accept this driver; its log: {server.log_file}"


def why_stopped(server: Server, started: bool) -> str:
    """Why the server stopped (or never answered): one line when the cause is known, else its log's tail."""
    if why := master_problem(server):
        return why
    what = "stopped" if started else "did not start"
    return f"the Spark Connect server {what}; last lines of {server.log_file}:\n" + "\n".join(server.log_tail())


def _start_failure(server: Server, started: float, timeout_s: float = START_TIMEOUT_S) -> str | None:
    """For a server that does not answer yet: None while it may still start; once it has exited, its master
    has refused it, or ``timeout_s`` has passed since ``started``, stop it and say why."""
    if server.proc.poll() is None and time.monotonic() - started <= timeout_s and master_problem(server) is None:
        return None
    stop_process(server.proc)
    return why_stopped(server, started=False)


def wait_ready(server: Server, timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until the server accepts connections; stop it and raise with its log's tail if it does not."""
    started = time.monotonic()
    while not _answers(server.port):
        if why := _start_failure(server, started, timeout_s):
            raise processes.ServerError(why)
        time.sleep(0.25)


def wait_for_remote(remote: str, timeout_s: float = START_TIMEOUT_S) -> float:
    """Wait until the Connect server at ``remote`` (``sc://host:port``) accepts connections, and until the job
    fork server named by ``SETLIST_JOB_FORKS`` (if any) has bound its socket; the seconds waited. A server
    still starting (``setlist run`` starts it beside Airflow) is waited for; one that never answers is the
    client's to report."""
    started = time.monotonic()
    deadline = started + timeout_s
    host, _, port = remote.removeprefix("sc://").split("/", 1)[0].partition(":")
    forks = os.environ.get(job_forks.SOCKET_VAR)
    while time.monotonic() < deadline:
        if _answers(int(port or DEFAULT_PORT), host) and (not forks or Path(forks).exists()):
            break
        time.sleep(0.25)
    return time.monotonic() - started


@dataclass
class Warm:
    """The warm Spark of a ``with running(...)`` block: what its clients need (``env``) and, when the block
    started it, the server, which may still be starting (:meth:`check`)."""

    env: dict[str, str]
    server: Server | None = None
    started: float = 0.0
    ready: bool = False

    def check(self) -> str | None:
        """None while the server runs or starts (the first call that finds it answering logs its start-up
        time); why it did not start, or why it stopped later (its driver lost its cluster), once it has."""
        if self.server is None:
            return None
        if self.ready:
            if self.server.proc.poll() is None:
                return None
            return why_stopped(self.server, started=True)
        if _answers(self.server.port):
            self.ready = True
            waited = time.monotonic() - self.started
            log.info("warm Spark (Spark Connect) on 127.0.0.1:%d, ready in %.1fs", self.server.port, waited)
            return None
        return _start_failure(self.server, self.started)


def start(
    settings: Settings, port: int | None = None, log_file: Path | None = None, secret: str | None = None
) -> Server:
    """Start the server and wait until it accepts connections."""
    server = spawn(settings, port, log_file, secret)
    wait_ready(server)
    return server


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (its Python workers too), SIGKILL if it is still there later."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@contextmanager
def running(settings: Settings) -> Iterator[Warm]:
    """A warm Spark for the duration of the block: the server named by ``SETLIST_SPARK_REMOTE``, a new one
    (stopped afterwards), or none in ``submit`` mode (empty ``env``). A new server is still starting when the
    block begins, so whatever the block starts meanwhile (Airflow) overlaps its start-up: its clients wait for
    it (:func:`wait_for_remote`), and the block calls :meth:`Warm.check` to learn whether it failed."""
    if settings.spark_mode != "connect":
        yield Warm({})
        return
    if settings.spark_remote:
        yield Warm({"SETLIST_SPARK_REMOTE": settings.spark_remote})
        return
    started = time.monotonic()
    server = spawn(settings)
    try:
        yield Warm(server.client_env(), server, started)
    finally:
        stop_process(server.proc)


def serve(settings: Settings, port: int = DEFAULT_PORT) -> int:
    """``setlist spark-server``: run the server in the foreground until SIGINT or SIGTERM."""
    server = start(settings, port, secret=token())  # a generated token is shown here, once
    log.info("Spark Connect server at %s over %s; clients need %s", server.url, settings.lake, TOKEN_VAR)
    log.info("  ($SPARK_CONNECT_AUTHENTICATE_TOKEN or %s);", credentials.password_file("spark-connect"))
    log.info("  jobs use it with SETLIST_SPARK_REMOTE=%s; log %s; Ctrl-C stops it", server.url, server.log_file)
    stopping = processes.wait_for_signal(lambda: server.proc.poll() is None)
    code = server.proc.poll()
    stop_process(server.proc)
    return 0 if stopping else int(code or 1)
