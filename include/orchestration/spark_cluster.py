"""A Spark standalone cluster on one machine (``setlist spark-cluster``): a master and N workers from pyspark's
own ``bin/spark-class``, all on 127.0.0.1, for trying the multi-machine path without more machines.

Each worker has its own cores, memory and work directory. The cluster requires Spark's shared-secret
authentication (``spark.authenticate``): the secret is ``SETLIST_SPARK_CLUSTER_SECRET``, else generated once
and stored outside the repository like the other servers' passwords; it reaches the master and the workers
through the environment (``_SPARK_AUTH_SECRET``) and the warm Spark that drives it
(``SETLIST_SPARK_MASTER=spark://127.0.0.1:PORT``) through a properties file (:func:`driver_properties`), never
a command line. A driver authenticates when ``SETLIST_SPARK_CLUSTER_SECRET`` is set (with any master) or when
its master is a cluster ``setlist spark-cluster`` runs here now, and never otherwise.

Reads settings; writes each process's log and the workers' directories under ``root``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.core import credentials
from include.core.config import check_range
from include.core.processes import free_ports, launch, wait_for_signal
from include.orchestration.airflow_env import spark_home

log = logging.getLogger(__name__)

SECRET_VAR = "SETLIST_SPARK_CLUSTER_SECRET"
SPARK_SECRET_ENV = "_SPARK_AUTH_SECRET"  # where Spark's SecurityManager reads the shared secret
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
DEFAULT_PORT = 7077
START_TIMEOUT_S = 120.0


def secret() -> str:
    """The cluster's shared secret: the environment's, else generated once and stored (shown once)."""
    return credentials.password("spark-cluster", SECRET_VAR)


def _running_file() -> Path:
    return credentials.password_file("spark-cluster").with_name("spark-cluster-running.json")


def driver_secret(master: str) -> str | None:
    """The shared secret a driver of ``master`` presents: ``SETLIST_SPARK_CLUSTER_SECRET`` when it is set (any
    master), else the stored one when ``master`` is a cluster that ``setlist spark-cluster`` runs on this
    machine now; otherwise none (the master does not require one, or the setting is missing, which the driver's
    start then says)."""
    if os.environ.get(SECRET_VAR):
        return os.environ[SECRET_VAR]
    try:
        running = json.loads(_running_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if running.get("master") != master or not _alive(int(running.get("pid", 0))):
        return None
    return secret()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return pid > 0


def driver_properties(master: str) -> Path | None:
    """For a driver of ``master`` that has a secret to present (:func:`driver_secret`): a properties file (mode
    600, outside the repository) that turns authentication on with it; None otherwise. A file, not ``--conf``: a
    command line is visible to every user of the machine."""
    cluster_secret = driver_secret(master)
    if cluster_secret is None:
        return None
    path = credentials.password_file("spark-cluster").with_name("spark-cluster-driver.properties")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"spark.authenticate true\nspark.authenticate.secret {cluster_secret}\n")
    return path


@dataclass
class Cluster:
    """A running cluster: its processes (each a process group of its own), master URL and web UI ports."""

    master_port: int
    master_ui_port: int
    worker_ui_ports: list[int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def status(self, port: int | None = None, attempts: int = 3) -> dict[str, Any]:
        """The JSON status of the master (default) or of a worker's web UI.

        A busy web UI now and then drops a connection without an answer, so a read is tried ``attempts`` times.
        """
        url = f"http://127.0.0.1:{port or self.master_ui_port}/json/"
        for _ in range(attempts - 1):
            try:
                return _read_json(url)
            except OSError as err:  # refused, reset or closed without a response (http.client.RemoteDisconnected)
                log.debug("no status from %s (%s); trying again", url, err)
                time.sleep(1.0)
        return _read_json(url)


def _read_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def _spark_home() -> Path:
    home = spark_home()
    if home is None:
        raise RuntimeError("pyspark is not installed: run `make setup`")
    return Path(home)


def _env(cluster_secret: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SPARK_HOME": str(_spark_home()),
            "SPARK_LOCAL_IP": "127.0.0.1",  # RPC and web UIs on loopback only
            SPARK_SECRET_ENV: cluster_secret,
            # every daemon requires the secret; the master's and workers' REST submission servers stay off
            "SPARK_DAEMON_JAVA_OPTS": "-Dspark.authenticate=true -Dspark.master.rest.enabled=false",
        }
    )
    return env


def _spawn(argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    return launch([str(_spark_home() / "bin" / "spark-class"), *argv], env, log_file)


def start(
    root: Path,
    workers: int = 2,
    cores: int = 1,
    memory: str = "2g",
    port: int | None = None,
    cluster_secret: str | None = None,
) -> Cluster:
    """Start the master and ``workers`` workers and wait until every worker is registered and alive."""
    check_range("--workers", workers, 1, 16)
    check_range("--worker-cores", cores, 1, os.cpu_count() or 1)
    if port is not None:
        check_range("--port", port, 1024, 65535)
    ports = [p for p in free_ports(workers + 2) if p != port]  # one port each: the master's, its UI, each worker UI
    port = port or ports.pop()
    env = _env(cluster_secret or secret())
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(port, ports[0], ports[1 : workers + 1])
    master = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(cluster.master_ui_port)]
    cluster.procs.append(_spawn([MASTER_CLASS, *master], env, root / "master.log"))
    try:
        for i, ui_port in enumerate(cluster.worker_ui_ports):
            work = root / f"worker-{i}"
            work.mkdir(exist_ok=True)
            argv = [WORKER_CLASS, "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory]
            argv += ["--work-dir", str(work), "--webui-port", str(ui_port), cluster.master_url]
            cluster.procs.append(_spawn(argv, env, root / f"worker-{i}.log"))
        _wait_for_workers(cluster, workers, root)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def _wait_for_workers(cluster: Cluster, count: int, root: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            alive = [w for w in cluster.status(attempts=1).get("workers", []) if w.get("state") == "ALIVE"]
            if len(alive) >= count:
                return
        except (OSError, ValueError):  # not up yet, or its web UI still serving a page instead of the JSON
            pass
        dead = [p for p in cluster.procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"the Spark cluster did not start; see the logs in {root}")
        time.sleep(0.5)


def stop(cluster: Cluster) -> None:
    """SIGTERM to every process group (workers first, their executors with them), SIGKILL if one stays."""
    for proc in reversed(cluster.procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in cluster.procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def serve(root: Path, workers: int, cores: int, memory: str, port: int = DEFAULT_PORT) -> int:
    """``setlist spark-cluster``: run the cluster in the foreground until SIGINT or SIGTERM."""
    cluster = start(root, workers, cores, memory, port)
    log.info("Spark cluster at %s: %d workers x %d cores x %s", cluster.master_url, workers, cores, memory)
    log.info("  master UI http://127.0.0.1:%d/; logs and work dirs in %s", cluster.master_ui_port, root)
    log.info("  use it: SETLIST_SPARK_MASTER=%s (its secret goes along); Ctrl-C stops it", cluster.master_url)
    running = _running_file()
    running.write_text(json.dumps({"master": cluster.master_url, "pid": os.getpid()}), encoding="utf-8")
    try:
        stopping = wait_for_signal(lambda: all(p.poll() is None for p in cluster.procs))
    finally:
        running.unlink(missing_ok=True)
        stop(cluster)
    return 0 if stopping else 1
