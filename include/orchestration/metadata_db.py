"""Airflow's metadata database by default: a PostgreSQL server of the Airflow home's own, which Setlist
initialises, starts and stops itself.

SQLite, Airflow's embedded default, takes one writer at a time: the REST API and the UI's Backfill form refuse a
backfill whenever the scheduler holds the lock (``Database is locked. Backfill creation is not supported on SQLite
under concurrent access``), so on SQLite a backfill works or not by chance. Setlist therefore runs Debian's
PostgreSQL server (``make postgres`` installs it) for each Airflow home that has no database configured:

- data in ``<AIRFLOW_HOME>/postgres/data``, created on first use (``initdb``) with a generated password stored
  beside it (``<AIRFLOW_HOME>/postgres/password``, mode 600; nobody types it);
- listening on 127.0.0.1 only, on a free port, with no Unix socket; password (SCRAM) logins only;
- started by the first command that needs it (``setlist airflow``, ``setlist run``) and stopped once the last of
  them has ended, however it ended: each holds a shared lock on ``users.lock`` for as long as it runs, and a small
  keeper process (``python -m include.orchestration.metadata_db keep DIR``), the server's parent, stops the
  server within a second once nobody holds it (the kernel releases a killed process's lock).

As root (a container, CI) the server runs as the ``postgres`` system user, which PostgreSQL requires.
``SETLIST_AIRFLOW_DB_URL`` (PostgreSQL elsewhere, or SQLite for those who need no backfills) or an inherited
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` replaces it.

Reads and writes ``<AIRFLOW_HOME>/postgres``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from include.core import processes
from include.core.config import ConfigError, Settings

log = logging.getLogger("include.orchestration.metadata_db")  # by name: the keeper runs as __main__

CONN_VAR = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
USER, DATABASE = "setlist", "airflow"
START_TIMEOUT_S = 60.0
KEEPER_POLL_S = 0.5
SYSTEM_USER = "postgres"  # PostgreSQL refuses to run as root


class MetadataDbError(RuntimeError):
    """The embedded metadata database cannot run here; the message says what to change."""


def configured(settings: Settings, env: Mapping[str, str] | None = None) -> str | None:
    """The metadata database the user configured (``SETLIST_AIRFLOW_DB_URL``, else an inherited
    ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``), or None: the embedded PostgreSQL."""
    if settings.airflow_db_url:
        return settings.airflow_db_url.get_secret_value()
    return (os.environ if env is None else env).get(CONN_VAR) or None


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    where = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
    return f"{parts.scheme}://{where}"


def server_binaries() -> Path:
    """Debian's PostgreSQL server programs (the newest installed major version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise MetadataDbError(
            "Airflow's embedded metadata database needs Debian's PostgreSQL server: run `make postgres`, or set"
            " SETLIST_AIRFLOW_DB_URL to a database of your own"
        )
    return found[-1].parent


@contextlib.contextmanager
def running(home: Path) -> Iterator[str]:
    """The embedded database of the Airflow home ``home`` for the duration of the block (started if it is not
    running); yields its SQLAlchemy URL (a secret: never log it)."""
    root = home / "postgres"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(root / "users.lock", "a+") as users:
        with _locked(root / "start.lock"):
            fcntl.flock(users, fcntl.LOCK_SH)
            state = _state(root)
            if state is None:
                state = _start_keeper(root)
        try:
            yield url(root, state["port"])
        finally:
            fcntl.flock(users, fcntl.LOCK_UN)


def url(root: Path, port: int) -> str:
    password = (root / "password").read_text(encoding="utf-8").strip()
    return f"postgresql+psycopg2://{USER}:{password}@127.0.0.1:{port}/{DATABASE}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _state(root: Path) -> dict[str, int] | None:
    """The running server's ``{"port", "keeper"}``, or None when none runs (or its keeper is gone)."""
    try:
        state = json.loads((root / "server.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _alive(int(state["keeper"])) or not _answers(int(state["port"])):
        return None
    return {"port": int(state["port"]), "keeper": int(state["keeper"])}


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_keeper(root: Path) -> dict[str, int]:
    """Start the keeper (which starts the server) and wait until the server takes connections."""
    server_binaries()  # the one-line error before anything starts
    _check_reachable(root)
    (root / "server.json").unlink(missing_ok=True)
    with open(root / "server.log", "ab") as out:
        keeper = subprocess.Popen(
            [sys.executable, "-m", __name__, "keep", str(root)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own lifetime: it ends once no command uses the database
        )
    processes.spare(keeper.pid)  # a command's guard leaves it to its other users
    deadline = time.monotonic() + START_TIMEOUT_S + 30  # the keeper's own attempts end first
    while (state := _state(root)) is None:
        if keeper.poll() is not None or time.monotonic() > deadline:
            tail = (root / "server.log").read_text(errors="replace").splitlines()[-8:]
            raise MetadataDbError(
                f"Airflow's embedded metadata database (PostgreSQL in {root}) did not start: "
                + " | ".join(line.strip() for line in tail if line.strip())
            )
        time.sleep(0.1)
    return state


def _check_reachable(root: Path) -> None:
    """As root the server runs as ``postgres``, which must be able to enter every folder above its data."""
    if os.geteuid() != 0:
        return
    for folder in [root.parent, *root.parent.parents]:
        if not folder.stat().st_mode & 0o001:
            raise MetadataDbError(
                f"the embedded metadata database runs as the {SYSTEM_USER} user (PostgreSQL refuses root), which"
                f" cannot enter {folder}: allow it (chmod o+x {folder}), move AIRFLOW_HOME, or set"
                " SETLIST_AIRFLOW_DB_URL"
            )


# -- the keeper ---------------------------------------------------------------------------------------------


def _as_owner() -> dict[str, object]:
    """Popen arguments that run a server program as the ``postgres`` user when this process is root."""
    return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []} if os.geteuid() == 0 else {}


def _initialise(root: Path, bins: Path) -> None:
    data = root / "data"
    password = root / "password"
    if not password.exists():
        fd = os.open(password, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    if os.geteuid() == 0:  # the server's user owns its folder; root reads the password file anyway
        import shutil

        shutil.chown(root, SYSTEM_USER, SYSTEM_USER)
        shutil.chown(password, SYSTEM_USER, SYSTEM_USER)
    argv = [str(bins / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={password}"]
    argv += ["--encoding=UTF8", "--locale=C.UTF-8"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, **_as_owner())  # type: ignore[call-overload]
    if done.returncode:
        raise MetadataDbError(f"initdb failed: {done.stderr.strip()[-500:]}")
    log.info("created the metadata database cluster in %s", data)


def _wait_for_old_server(data: Path, deadline: float) -> None:
    """A server of an earlier keeper (shutting down, or killed with its backends still ending) holds the data
    folder: wait until its process is gone, zombie included (PostgreSQL refuses to start while it exists)."""
    import psutil

    pid_file = data / "postmaster.pid"
    while pid_file.exists() and time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if not psutil.pid_exists(pid):
            return
        time.sleep(0.2)


def _serve(data: Path, bins: Path, password: str, deadline: float) -> tuple[subprocess.Popen[bytes], int] | None:
    """Start the server on a free port and create the database if needed; None if it exited first (an earlier
    server's backends may still hold its shared memory for a moment after a crash)."""
    _wait_for_old_server(data, deadline)
    port = processes.free_port()
    settings = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", f"port={port}"]
    server: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        [str(bins / "postgres"), "-D", str(data), *settings],
        stdin=subprocess.DEVNULL,
        preexec_fn=processes.end_with_parent(signal.SIGINT),  # a killed keeper: a fast shutdown
        **_as_owner(),
    )
    while server.poll() is None and time.monotonic() < deadline:
        try:
            _create_database(port, password)
            return server, port
        except Exception:  # not accepting connections yet
            time.sleep(0.1)
    server.kill()
    server.wait()
    return None


def _create_database(port: int, password: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user=USER, password=password, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DATABASE}")
                log.info("created the database %s", DATABASE)
    finally:
        conn.close()


def keep(root: Path) -> int:
    """The keeper's body: initialise the data folder once, run the server, stop it once no command holds
    ``users.lock``. Its output goes to ``server.log``."""
    bins = server_binaries()
    data = root / "data"
    if not (data / "PG_VERSION").exists():
        _initialise(root, bins)
    password = (root / "password").read_text(encoding="utf-8").strip()
    deadline = time.monotonic() + START_TIMEOUT_S
    while (started := _serve(data, bins, password, deadline)) is None:
        if time.monotonic() > deadline:
            log.error("the PostgreSQL server did not start in %.0f s (its lines above say why)", START_TIMEOUT_S)
            return 1
        time.sleep(1.0)
    server, port = started
    state = root / "server.json"
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"port": port, "keeper": os.getpid()}), encoding="utf-8")
    tmp.replace(state)
    log.info("PostgreSQL (pid %d) on 127.0.0.1:%d for %s", server.pid, port, root.parent)
    users = open(root / "users.lock", "a+")  # noqa: SIM115 - held for the keeper's life
    while server.poll() is None:
        time.sleep(KEEPER_POLL_S)
        with _locked(root / "start.lock"):
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # someone still uses it
            state.unlink(missing_ok=True)
            server.send_signal(signal.SIGINT)  # fast shutdown: no command is connected any more
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
            fcntl.flock(users, fcntl.LOCK_UN)
            log.info("stopped: no command uses the database any more")
            return 0
    state.unlink(missing_ok=True)
    log.error("the PostgreSQL server exited with %s", server.returncode)
    return 1


def environment(settings: Settings, home: Path) -> contextlib.AbstractContextManager[dict[str, str]]:
    """For a command that runs Airflow: ``{}`` when the user configured a database (it is used as configured),
    else the embedded database's connection variable, running for the duration of the block."""
    if (chosen := configured(settings)) is not None:
        setting = "SETLIST_AIRFLOW_DB_URL" if settings.airflow_db_url else CONN_VAR
        if chosen.startswith("sqlite"):
            log.warning(
                "Airflow's metadata database is SQLite (%s): the UI's and REST API's backfills may be refused while"
                " the scheduler writes; leave %s unset for the embedded PostgreSQL",
                describe(chosen),
                setting,
            )
        return contextlib.nullcontext({})
    return _embedded(home)


def check_configured(settings: Settings) -> None:
    """A configured database must answer before a command starts anything else (see :func:`check_reachable`)."""
    if (chosen := configured(settings)) is not None:
        check_reachable(chosen, "SETLIST_AIRFLOW_DB_URL" if settings.airflow_db_url else CONN_VAR)


def check_reachable(db_url: str, setting: str) -> None:
    """A configured database that cannot be reached stops the command at once, naming the setting (Airflow
    would retry its connection for minutes, and every task after it)."""
    parts = urlsplit(db_url)
    if parts.scheme.startswith("sqlite"):
        file = db_url.split(":///", 1)[1].split("?", 1)[0] if ":///" in db_url else ""  # sqlite:////abs.db
        folder = Path(file).parent if file and file != ":memory:" else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"{setting}: the SQLite database's folder {folder} does not exist")
        return
    import psycopg2

    try:
        psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username,
            password=parts.password,
            dbname=parts.path.lstrip("/") or None,
            connect_timeout=10,
        ).close()
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{setting}: cannot reach Airflow's metadata database {describe(db_url)}: {reason}") from None


@contextlib.contextmanager
def _embedded(home: Path) -> Iterator[dict[str, str]]:
    try:
        with running(home) as found:
            yield {CONN_VAR: found}
    except MetadataDbError as exc:
        raise ConfigError(str(exc)) from None


if __name__ == "__main__":
    from include.core.log import setup

    setup()
    if sys.argv[1:2] == ["keep"]:
        sys.exit(keep(Path(sys.argv[2])))
    sys.exit(f"usage: python -m {__name__} keep DIR")
