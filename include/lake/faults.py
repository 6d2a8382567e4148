"""Crashes on purpose at Delta commit points, for the crash tests: ``SETLIST_FAULT=STEP:WHEN:TABLE``.

A job whose step is ``STEP`` kills its own process with SIGKILL (no cleanup, no ``finally``) at the write of
``TABLE`` (its SQL name, e.g. ``silver.quarantine``): ``before`` the write starts, ``during`` it (as soon as the
write's first new data file appears under the table's folder, before the write returns; local lakes only), or
``after`` its commit returned. Every commit of every job goes through :mod:`include.lake.delta_io`, which calls
:func:`at`, so these are all of a job's commit points. ``SETLIST_FAULT_TRACE=FILE`` appends each commit point a
job passes (``STEP:TABLE``) to FILE, so a test can crash at each in turn.

Read only by the jobs, from their own environment; unset, :func:`at` does nothing. Reads and writes nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from include.core.config import ConfigError
from include.core.tables import SQL_NAMES

FAULT_ENV = "SETLIST_FAULT"
TRACE_ENV = "SETLIST_FAULT_TRACE"
WHEN = ("before", "during", "after")
STEPS = ("ingest_bronze", "build_silver", "build_gold", "train_als", "recommend", "maintain", "tune_als")
_POLL_S = 0.005

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fault:
    step: str
    when: str
    table: str


_armed: Fault | None = None
_step: str | None = None


def parse(text: str) -> Fault:
    """``STEP:WHEN:TABLE`` or a :class:`ConfigError` naming the part that is wrong and its allowed values."""
    parts = text.strip().split(":")
    if len(parts) != 3:
        raise ConfigError(f"{FAULT_ENV}: expected STEP:WHEN:TABLE (e.g. build_silver:after:silver.quarantine), got {text!r}")
    step, when, table = parts
    names = sorted(SQL_NAMES)
    for field, value, allowed in (("STEP", step, STEPS), ("WHEN", when, WHEN), ("TABLE", table, names)):
        if value not in allowed:
            raise ConfigError(f"{FAULT_ENV}: {field} must be one of {', '.join(allowed)}, got {value!r}")
    return Fault(step, when, table)


def arm(step: str) -> None:
    """Called by a job's ``main``: read ``SETLIST_FAULT`` and keep it when it names this step."""
    global _armed, _step
    _step = step
    text = os.environ.get(FAULT_ENV, "")
    fault = parse(text) if text.strip() else None
    _armed = fault if fault is not None and fault.step == step else None
    if _armed is not None:
        log.warning("%s: will crash %s the write of %s (%s)", step, _armed.when, _armed.table, FAULT_ENV)


def _crash(where: str) -> None:
    log.warning("%s: crashing %s (%s)", _step, where, FAULT_ENV)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _data_files(folder: Path) -> set[str]:
    found: set[str] = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "_delta_log"]
        found.update(os.path.join(root, f) for f in files if f.endswith(".parquet"))
    return found


def _watch(folder: Path, seen: set[str], stop: threading.Event, table: str) -> None:
    while not stop.wait(_POLL_S):
        if _data_files(folder) - seen:
            _crash(f"during the write of {table}, its first data files written")


@contextlib.contextmanager
def at(sql_name: str, path: str) -> Iterator[None]:
    """Wrap one Delta write (a commit point) of the table ``sql_name`` stored at ``path``."""
    if trace := os.environ.get(TRACE_ENV):
        with open(trace, "a", encoding="utf-8") as out:
            out.write(f"{_step}:{sql_name}\n")
    fault = _armed if _armed is not None and _armed.table == sql_name else None
    if fault is None:
        yield
        return
    if fault.when == "before":
        _crash(f"before the write of {sql_name}")
    stop = threading.Event()
    if fault.when == "during":
        if "://" in path:
            raise ConfigError(f"{FAULT_ENV}: WHEN=during needs a local lake, got {path!r}")
        folder = Path(path)
        args = (folder, _data_files(folder) if folder.exists() else set(), stop, sql_name)
        threading.Thread(target=_watch, args=args, name="fault-watch", daemon=True).start()
    try:
        yield
    finally:
        stop.set()
    _crash(f"after the commit of {sql_name}" + (" (the write returned first)" if fault.when == "during" else ""))
