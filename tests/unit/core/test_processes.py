"""A command's guard: whatever the command started ends with the command's first process, however that ends
(include/core/processes.py), a held port is named with its process, and ports chosen together differ."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from include.core import processes

pytestmark = pytest.mark.unit

# The command under test: in its guard, a child that starts a grandchild in a session of its own (as Airflow's
# task runners put themselves in process groups of their own), then both wait.
COMMAND = """
import os, subprocess, sys, time
from include.core import processes

if (code := processes.guarded(sys.argv[1:], [sys.executable, __file__])) is not None:
    sys.exit(code)
grandchild = "import subprocess, sys, time; sleep = [sys.executable, '-c', 'import time; time.sleep(300)']"
grandchild += "; g = subprocess.Popen(sleep,"
grandchild += " start_new_session=True)"
grandchild += "; print(g.pid, flush=True); time.sleep(300)"
child = subprocess.Popen([sys.executable, "-c", grandchild], stdout=subprocess.PIPE, text=True)
print(os.getpid(), child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(300)
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "command.py"
    script.write_text(COMMAND, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    first = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    assert first.stdout is not None
    pids = [int(p) for p in first.stdout.readline().split()]
    assert len(pids) == 3 and all(psutil.pid_exists(p) for p in pids)
    return first, pids


def _gone(pids: list[int], timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_a_sigkill_to_the_commands_process_group_ends_everything_it_started(tmp_path):
    first, pids = _start(tmp_path)
    guard = psutil.Process(pids[0])
    assert guard.ppid() == first.pid and os.getsid(pids[0]) != os.getsid(first.pid)  # outside the group
    os.killpg(first.pid, signal.SIGKILL)  # as a supervisor's stop ends: no handler runs in the first process
    first.wait(timeout=10)
    assert _gone(pids) == []


def test_sigterm_to_the_first_process_stops_the_command_with_its_exit_code(tmp_path):
    first, pids = _start(tmp_path)
    first.send_signal(signal.SIGTERM)  # passed on to the guard, which ends its tree and exits
    assert first.wait(timeout=60) == 128 + signal.SIGTERM
    assert _gone(pids, timeout_s=5) == []


def test_a_held_port_is_named_with_its_process():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert processes.port_holder(port) == processes.describe(os.getpid())
        assert f"pid {os.getpid()} (" in processes.port_holder(port)
    assert processes.port_holder(port) is None


def test_ports_chosen_together_are_different_and_free():
    ports = processes.free_ports(64)
    assert len(set(ports)) == 64
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
