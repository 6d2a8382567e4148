"""Processes that never outlive the command that started them; free ports, and who holds a port.

A server command (``setlist run``, ``setlist airflow``, ``setlist spark-server``, ...) starts processes that start
others: Airflow's scheduler forks executor workers, each task runner puts itself in a process group of its own,
spark-submit starts JVMs. Signals to one process group, or the death of one parent, reach only part of that
tree, and whatever survives keeps ports, locks and half-run tasks for as long as nobody kills it by hand.

:func:`guarded` closes that gap for a whole command: the command's first process (what a terminal, ``make`` or a
supervisor started) runs the command again as its child, in a session of its own, and only waits for it,
passing on SIGINT, SIGTERM and SIGHUP. That child (the *guard*) is the Linux "child subreaper" of everything
it starts, so every descendant whose parent dies is re-parented to it and stays findable; when the first
process ends, however it ends (a SIGKILL to its whole process group included), the kernel sends the guard
SIGTERM (a parent-death signal), and the guard ends its whole tree: SIGTERM, then SIGKILL to whatever is left
after a grace period. The guard is outside the first process's group, so a group SIGKILL that arrives while it
is stopping the tree does not cut the stop short. A process the guard must leave running (a server shared with
other commands) is named with :func:`spare`.

Reads ``/proc`` (through psutil) and the kernel's socket tables; writes nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

GUARD_VAR = "SETLIST_GUARD_PARENT"  # set in the guard's environment: the pid of the process it belongs to
STOP_GRACE_S = 20.0
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# Looked up here, not in a forked child: a child of a threaded parent must not load libraries.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_spared: set[int] = set()


class ServerError(RuntimeError):
    """A server a command started did not start, or stopped; the message says why (with its log's tail when the
    cause is not known)."""


def end_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the kernel sends the child ``sig`` when the thread that started it ends, even by
    SIGKILL (Linux's parent-death signal; ``exec`` keeps it). Start such children from the main thread."""

    def arm() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, sig)

    return arm


def guarded(argv: Sequence[str], program: Sequence[str] = (sys.executable, "-m", "include.cli")) -> int | None:
    """In a command's first process: run ``program argv`` (the same command) as the guard (see the module) and
    return its exit code. In the guard itself: make it the subreaper of its descendants, end them all when it
    exits, and return None (the caller then runs the command)."""
    parent = os.environ.get(GUARD_VAR)
    if parent is not None:
        _become_guard(int(parent))
        return None
    child = subprocess.Popen(
        [*program, *argv],
        env={**os.environ, GUARD_VAR: str(os.getpid())},
        start_new_session=True,
        preexec_fn=end_with_parent(signal.SIGTERM),
    )
    for sig in _FORWARDED:
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:  # pragma: no cover - wait() retries EINTR itself since Python 3.5
            continue
    return code if code >= 0 else 128 - code


def _become_guard(parent: int) -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() != parent:  # the first process died before the parent-death signal was armed
        sys.exit(128 + signal.SIGTERM)

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, stop)
    atexit.register(end_descendants)


def spare(pid: int) -> None:
    """Leave ``pid`` and its descendants running when the guard ends its tree (a server other commands share)."""
    _spared.add(pid)


def _descendants() -> list[object]:
    import psutil

    me = psutil.Process()
    spared = set(_spared)
    for pid in _spared:
        try:
            spared |= {p.pid for p in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            continue
    return [p for p in me.children(recursive=True) if p.pid not in spared]


def end_descendants(grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM to every descendant of this process (but the spared ones), SIGKILL to those still there after
    ``grace_s``; how many there were."""
    import psutil

    procs = _descendants()
    if not procs:
        return 0
    log.debug("ending %d processes this command started", len(procs))
    for proc in procs:
        try:
            proc.terminate()  # type: ignore[attr-defined]
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace_s)  # type: ignore[arg-type]
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=10)
    # processes that started while the first ones were stopping (a task's retry, a new worker)
    late = _descendants()
    for proc in late:
        try:
            proc.kill()  # type: ignore[attr-defined]
        except psutil.NoSuchProcess:
            continue
    return len(procs) + len(late)


def end_tree(pid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to ``pid`` and every descendant it has now (found before any of them ends, so none is lost to a
    re-parenting), SIGKILL to those still there after ``grace_s``."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Within the block, file descriptor 2 is ``path`` (appended): a child process started then (a JVM) writes
    its standard error there for its whole life; this process's own stderr is back after the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log_file:
            os.dup2(log_file.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that nothing listens on now (each held until all are chosen:
    the kernel may hand out a port it just freed again, and two servers given the same one collide)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def port_holder(port: int) -> str | None:
    """Which process listens on ``port`` (``pid 1234 (airflow api-server)``), "a process" when the kernel does not
    say whose it is, or None when nothing listens there."""
    import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "a process of another user"
            return describe(conn.pid)
    return None


def describe(pid: int) -> str:
    """``pid 1234 (the start of its command line)``."""
    import psutil

    try:
        command = " ".join(psutil.Process(pid).cmdline()[:3]) or "?"
    except psutil.Error:
        command = "?"
    return f"pid {pid} ({command[:80]})"


def launch(argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start a server process in a process group of its own, its output appended to ``log_file``; it
    stops when the calling thread's process ends."""
    with open(log_file, "ab") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=end_with_parent(signal.SIGTERM),  # a killed parent takes it along
        )


def wait_for_signal(alive: Callable[[], bool]) -> bool:
    """Block until SIGINT or SIGTERM (True) or until ``alive()`` turns false (False): a foreground server's loop."""
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    while not stopping and alive():
        time.sleep(1.0)
    return stopping
