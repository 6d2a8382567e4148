"""Warm job processes: a fork server that has imported the jobs once, and the hand-off a job's ``main`` makes to it.

Every job's client imports pyspark, pandas, pyarrow and Great Expectations before it sends its first query:
about 5 s of CPU per task on this project's machine, more than some tasks' whole Spark work. The fork server
(``python -m include.lake.job_forks --socket PATH``, started beside the warm Spark by
:mod:`include.orchestration.spark_server`) imports them once, then forks one child per job. When
``SETLIST_JOB_FORKS`` names its socket, a job started as a program (``spark-submit ... spark_jobs/STEP.py``)
hands its arguments, environment, working directory and standard streams to the server and waits; the child
runs the same ``main`` with them, writes to the same streams (so the Airflow task log is unchanged) and its exit
status becomes the job's. Without the variable, or when the server does not answer, the job runs in its own
process as before.

Crash and cancel safety: the waiting job forwards SIGTERM, SIGINT and SIGHUP to its child; if the waiting job
dies (even by SIGKILL), its child sees the connection close and kills itself at once, so a killed task never
leaves a job writing behind it. The child's exit by a signal is passed on as the same signal.

The socket lives in a directory only its user can enter (Unix permissions are the login: the server runs jobs
with whatever environment a caller sends, so only the same user may call it); the server forks only the
modules it preloaded. Reads and writes nothing but the socket and the streams it is given.
"""

from __future__ import annotations

import array
import contextlib
import importlib
import json
import logging
import os
import selectors
import shlex
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import setproctitle

log = logging.getLogger(__name__)

SOCKET_VAR = "SETLIST_JOB_FORKS"
# What every job imports; the jobs themselves are added by the caller.
PRELOAD = (
    "pandas",
    "pyarrow",
    "pyspark.sql.connect.session",
    "pyspark.ml.recommendation",
    "include.quality.runner",
    "include.core.log",
)
JOBS_PACKAGE = "spark_jobs"
CODE_PACKAGES = ("include", JOBS_PACKAGE, "expectations")
_HEADER = struct.Struct("!I")
_MAX_REQUEST = 4 << 20
_REQUEST_TIMEOUT_S = 10.0
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class ForkServerLost(RuntimeError):
    """The fork server stopped while a job it ran was still running: the job's exit status is unknown."""


class Refused(RuntimeError):
    """The fork server did not start the job (the message says why); the job can run in its own process."""


# -- the client side ---------------------------------------------------------------------------------------


def _send(conn: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    body = json.dumps(message).encode()
    header = _HEADER.pack(len(body))
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    conn.sendmsg([header], ancillary)
    conn.sendall(body)


def _receive(conn: socket.socket) -> dict[str, Any] | None:
    """One message, or None when the other side closed the connection."""
    header = _read_exactly(conn, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(conn, _HEADER.unpack(header)[0])
    return None if body is None else dict(json.loads(body))


def _read_exactly(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def connect(path: str) -> socket.socket | None:
    """A connection to the fork server at ``path``, or None when none answers there."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    return conn


def run(
    conn: socket.socket, module: str, argv: Sequence[str], env: dict[str, str], cwd: str, fds: Sequence[int]
) -> int:
    """Run ``module.main(argv)`` in a child of the fork server with ``env`` as its whole environment, ``cwd`` as
    its directory and ``fds`` as its stdin, stdout and stderr; its exit status as :mod:`subprocess` reports it
    (``-9`` for SIGKILL). Signals in ``_FORWARDED`` that reach this process meanwhile are passed to the child."""
    with conn:
        _send(conn, {"module": module, "argv": list(argv), "env": env, "cwd": cwd}, fds)
        started = _receive(conn)
        if started is None or "error" in started:
            raise Refused(started["error"] if started else "the fork server closed the connection")
        pid = int(started["pid"])
        restore = _forward_signals(pid)
        try:
            done = _receive(conn)
        finally:
            restore()
    if done is None:
        raise ForkServerLost(f"the fork server stopped while job process {pid} ran ({module})")
    return int(done["returncode"])


def _forward_signals(pid: int) -> Callable[[], None]:
    """Pass the forwarded signals to ``pid`` (only the main thread may set handlers); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def forward(sig: int, _: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def hand_off(step: str, argv: Sequence[str]) -> int | None:
    """In a job started as a program: run it in a child of the fork server named by ``SETLIST_JOB_FORKS`` and
    return its exit code (a child killed by a signal kills this process with the same signal); None when no
    fork server is named or answers (or this process is a classic spark-submit's driver), so the job runs
    here."""
    path = os.environ.get(SOCKET_VAR)
    # spark-submit without --remote made this process the driver's Python, tied to that JVM: it stays here
    driver = "PYSPARK_GATEWAY_PORT" in os.environ and "PYSPARK_REMOTE_INIT_CONF_LEN" not in os.environ
    conn = connect(path) if path and not driver else None
    if conn is None:
        return None
    env = {k: v for k, v in os.environ.items() if k != SOCKET_VAR}
    try:
        code = run(conn, f"{JOBS_PACKAGE}.{step}", argv, env, os.getcwd(), (0, 1, 2))
    except Refused as exc:
        log.info("%s: runs in its own process: the job fork server refused it (%s)", step, exc)
        return None
    except ForkServerLost as exc:
        log.error("%s: %s", step, exc)
        return 1
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


EXIT_USAGE = 2


def launch(argv: Sequence[str]) -> int:
    """``spark_jobs/__main__.py STEP [options]``, the entry the DAG submits: hand the job to the fork server
    before anything heavy is imported (the job's own module imports pyspark, 0.9-1.7 s of CPU); without one,
    import ``spark_jobs.STEP`` and run its ``main`` here, as ``spark_jobs/STEP.py`` runs."""
    from include.core import log as setlist_log

    setlist_log.setup()
    steps = [m.removeprefix(f"{JOBS_PACKAGE}.") for m in job_modules()]
    if not argv or argv[0] not in steps:
        got = f"got {argv[0]!r}" if argv else "none given"
        log.error("STEP: must be one of %s (%s)", ", ".join(steps), got)
        return EXIT_USAGE
    step, args = argv[0], list(argv[1:])
    code = hand_off(step, args)
    if code is not None:
        return code
    # the job's main with its arguments given (not read from sys.argv) runs here: it does not ask again
    return int(importlib.import_module(f"{JOBS_PACKAGE}.{step}").main(args) or 0)


# -- the server side ---------------------------------------------------------------------------------------


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: the caller's streams, environment and directory, then the job's ``main``; never
    returns. A thread watches the connection: when the caller is gone, the child kills itself."""
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in any Python program
        signal.set_wakeup_fd(-1)
        # what ps shows: the job, not the server (before the environment changes: the title reuses its memory)
        setproctitle.setproctitle(shlex.join(["setlist-job", request["module"], *request["argv"]]))
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [request["module"], *request["argv"]]
        threading.Thread(target=_watch, args=(conn,), name="caller-watch", daemon=True).start()
        code = int(importlib.import_module(request["module"]).main(list(request["argv"])) or 0)
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("%s: failed in the forked job process", request.get("module"))
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


def _watch(conn: socket.socket) -> None:
    try:
        while conn.recv(64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)  # the caller is gone: nobody waits for this job any more


class ForkServer:
    """The server loop: one thread (so forking is safe), one child per request, exit statuses sent back."""

    def __init__(self, path: str, modules: Sequence[str], parent: int | None = None) -> None:
        self.path = path
        self.parent = os.getppid() if parent is None else parent  # the process that started it: the Spark server
        self.modules = set(modules)
        self.children: dict[int, socket.socket] = {}
        self.selector = selectors.DefaultSelector()
        self.stamp = code_stamp()

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup pipe hears of each exit
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        listener.listen(64)
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        log.info("job fork server on %s (%d modules preloaded)", self.path, len(sys.modules))
        while os.getppid() == self.parent:  # the Spark server still runs (checked from before the imports)
            for key, _ in self.selector.select(timeout=5.0):
                if key.data == "accept":
                    conn, _ = listener.accept()
                    self._start(conn, listener)
                elif key.data == "wake":
                    os.read(wake_r, 4096)
            self._reap()

    def _start(self, conn: socket.socket, listener: socket.socket) -> None:
        conn.settimeout(_REQUEST_TIMEOUT_S)
        fds: list[int] = []
        try:
            header, ancillary, _, _ = conn.recvmsg(_HEADER.size, socket.CMSG_SPACE(3 * array.array("i").itemsize))
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += array.array("i", data[: len(data) - len(data) % 4]).tolist()
            if 0 < len(header) < _HEADER.size:
                header += _read_exactly(conn, _HEADER.size - len(header)) or b""
            size = _HEADER.unpack(header)[0] if len(header) == _HEADER.size else 0
            body = _read_exactly(conn, size) if 0 < size <= _MAX_REQUEST else None
            request = json.loads(body) if body else None
            problem = self._problem(request, fds)
        except (OSError, ValueError) as exc:
            problem, request = f"a request that could not be read: {exc}", None
        if problem is not None or request is None:
            log.warning("refused a request: %s", problem)
            self._close_fds(fds)
            self._answer(conn, {"error": problem})
            conn.close()
            return
        conn.settimeout(None)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:
            listener.close()
            for other in self.children.values():
                other.close()
            _child(conn, request, fds)
        self._close_fds(fds)
        self.children[pid] = conn
        self._answer(conn, {"pid": pid})

    def _problem(self, request: Any, fds: list[int]) -> str | None:
        if not isinstance(request, dict) or not {"module", "argv", "env", "cwd"} <= request.keys():
            return "a request names module, argv, env and cwd"
        if request["module"] not in self.modules:
            return f"module must be one of {', '.join(sorted(self.modules))}, got {request['module']!r}"
        if len(fds) != 3:
            return f"a request passes 3 file descriptors (stdin, stdout, stderr), got {len(fds)}"
        if code_stamp() != self.stamp:  # a child would run the code as it was when this server started
            return "Setlist's code changed since the fork server started"
        return None

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                self._answer(conn, {"returncode": os.waitstatus_to_exitcode(status)})
                conn.close()

    @staticmethod
    def _answer(conn: socket.socket, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the caller is gone; its child has seen that too
            _send(conn, message)

    @staticmethod
    def _close_fds(fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)


def code_stamp() -> tuple[int, int]:
    """The number of Setlist's Python files and their newest change: a stamp of the code the server preloaded."""
    times = [
        p.stat().st_mtime_ns
        for package in CODE_PACKAGES
        for p in Path(importlib.import_module(package).__file__ or "").parent.rglob("*.py")
    ]
    return len(times), max(times, default=0)


def job_modules() -> list[str]:
    """Every job module of the pipeline (``spark_jobs.*``)."""
    folder = Path(importlib.import_module(JOBS_PACKAGE).__file__ or "").parent
    return sorted(f"{JOBS_PACKAGE}.{p.stem}" for p in folder.glob("*.py") if not p.stem.startswith("_"))


@click.command(name="python -m include.lake.job_forks", help=__doc__)
@click.option("--socket", "socket_path", required=True, help="the Unix socket to listen on (in a private directory)")
def main(socket_path: str) -> None:
    parent = os.getppid()  # before the imports: a Spark server that fails meanwhile must not leave this behind
    from include.core import log as setlist_log

    os.environ.pop(setlist_log.EVENTS_VAR, None)  # each job's events go to the file its own caller names
    setlist_log.setup()
    modules = job_modules()
    for module in (*PRELOAD, *modules):
        importlib.import_module(module)
    if threading.active_count() != 1:  # forking a process with threads copies their locks, held or not
        log.error("the imports started threads: %s", [t.name for t in threading.enumerate()])
        raise SystemExit(1)
    server = ForkServer(socket_path, modules, parent)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve()
    finally:
        Path(socket_path).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(socket_path).parent.rmdir()  # the private directory it was given, when nothing else is there


if __name__ == "__main__":
    main()  # click: a usage error is one line and exit code 2
