"""Setlist's logging: one format in every process (jobs, Airflow tasks, servers, the command line), and the
progress events ``setlist run`` shows.

Every module logs with ``logging.getLogger(__name__)``; :func:`setup` gives the Setlist packages' loggers one
handler pair (information on stdout, warnings and errors on stderr, both ``[setlist] message``), so a job's
lines land in its Airflow task log as they are. When ``SETLIST_EVENTS`` names a file (``setlist run`` sets it for
the Airflow process it starts, and every task and spark-submit inherits it), each record is also appended to
that file as one JSON object, which the command line reads back as progress instead of parsing log text.

Writes stdout, stderr and the events file; reads nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

FORMAT = "[setlist] %(message)s"
EVENTS_VAR = "SETLIST_EVENTS"
PACKAGES = ("include", "spark_jobs", "expectations", "dags")


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """stdout or stderr as they are when a record is written (pytest and Airflow swap them)."""

    def __init__(self, errors: bool) -> None:
        super().__init__()
        self.errors = errors

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr if self.errors else sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


class EventFile(logging.Handler):
    """Appends each record to ``path`` as one JSON line (short single writes, so processes can share it)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        event = {
            "time": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(event) + "\n")
        except OSError:
            self.handleError(record)


def setup(level: int = logging.INFO) -> None:
    """Give the Setlist loggers their handlers, and an events handler when ``SETLIST_EVENTS`` names a file
    (once each per process: later calls change nothing)."""
    events = os.environ.get(EVENTS_VAR)
    for name in PACKAGES:
        logger = logging.getLogger(name)
        handlers: list[logging.Handler] = []
        if not any(isinstance(h, _Console) for h in logger.handlers):
            info, errors = _Console(errors=False), _Console(errors=True)
            info.addFilter(lambda r: r.levelno < logging.WARNING)
            errors.setLevel(logging.WARNING)
            handlers += [info, errors]
        if events and not any(isinstance(h, EventFile) and h.path == events for h in logger.handlers):
            handlers.append(EventFile(events))
        for handler in handlers:
            handler.setFormatter(logging.Formatter(FORMAT))
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False  # Airflow's root handlers would write each line a second time
    for name, known in logging.root.manager.loggerDict.items():
        # Airflow's logging set-up (dictConfig) disables the loggers that existed before it ran
        if name.split(".")[0] in PACKAGES and isinstance(known, logging.Logger):
            known.disabled = False


def show_once(message: str) -> None:
    """Setlist's one deliberate terminal write, for a secret shown once (a generated password): on stderr only,
    never through logging, whose records reach log files and the run's events file."""
    sys.stderr.write(f"[setlist] {message}\n")
    sys.stderr.flush()


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The whole events appended to ``path`` since ``offset``, and the offset after them."""
    if not path.exists():
        return [], offset
    with open(path, "rb") as events:
        events.seek(offset)
        data = events.read()
    complete = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in _lines(complete)], offset + len(complete)


def _lines(data: bytes) -> Iterator[str]:
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            yield line
