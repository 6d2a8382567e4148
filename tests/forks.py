"""Job runs forked from a process that has imported the jobs once, for tests that run a job many times in a process
of its own (the crash tests kill one with SIGKILL at each commit point). A fresh interpreter per run would pay
the imports of pyspark, pandas and Great Expectations (several seconds of CPU) every time; a forked child
starts with them loaded and otherwise runs exactly as ``python -m spark_jobs.STEP`` does: its own process, its
own environment, its own Spark session (the parent never opens one, so no connection is shared).

Run as ``python -m tests.forks MODULE...``: it imports the modules, then reads one JSON request a line from
stdin (``module``, ``argv``, ``env``, ``log``) and answers each with the child's exit status, as
``subprocess`` reports it (``-9`` for SIGKILL).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

PRELOAD = ("pandas", "pyarrow", "great_expectations", "pyspark.sql.connect.session", "pyspark.ml.recommendation")


class JobForks:
    """The forking process; ``run`` one job in a child of it, ``close`` (or leave the ``with``) to stop it."""

    def __init__(self, modules: Sequence[str], env: dict[str, str]) -> None:
        argv = [sys.executable, "-m", "tests.forks", *PRELOAD, *modules]
        root = str(Path(__file__).parent.parent)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=root)

    def run(self, module: str, argv: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, str]:
        """Run ``module.main(argv)`` in a forked child with ``env`` as its whole environment; its exit status and
        what it wrote to stdout and stderr (kept in ``log``)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"module": module, "argv": list(argv), "env": env, "log": str(log)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, f"the forking process exited with {self.proc.wait()}"
        return int(json.loads(answer)["returncode"]), log.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> JobForks:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def _child(request: dict) -> None:
    """In the forked child: the request's environment and log, then the job's ``main``; never returns."""
    code = 1
    try:
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.clear()
        os.environ.update(request["env"])
        code = int(importlib.import_module(request["module"]).main(request["argv"]) or 0)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(modules: Sequence[str]) -> None:
    for module in modules:
        importlib.import_module(module)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        sys.stdout.write(json.dumps({"returncode": code}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve(sys.argv[1:])
