"""Job runs in children of the test run's job fork server (:mod:`include.lake.job_forks`, started beside the
run's warm Spark), for tests that run a job many times in a process of its own (the crash tests kill one with
SIGKILL at each commit point): each child starts with pyspark, pandas and Great Expectations imported and
otherwise runs exactly as ``python spark_jobs/STEP.py`` does."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from include.lake import job_forks


def socket_path(timeout_s: float = 120.0) -> str:
    """The run's fork server socket, once it is there (it binds after its imports)."""
    path = os.environ[job_forks.SOCKET_VAR]
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"no job fork server at {path} after {timeout_s:.0f} s"
        time.sleep(0.2)
    return path


def run(module: str, argv: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    """Run ``module.main(argv)`` in a forked child with ``env`` as its whole environment; its exit status as
    :mod:`subprocess` reports it (``-9`` for SIGKILL) and what it wrote to stdout and stderr (kept in ``log``)."""
    conn = job_forks.connect(socket_path())
    assert conn is not None, "the job fork server does not answer"
    with open(log, "wb") as out, open(os.devnull, "rb") as null:
        code = job_forks.run(conn, module, argv, env, os.getcwd(), (null.fileno(), out.fileno(), out.fileno()))
    return code, log.read_text(encoding="utf-8", errors="replace")
