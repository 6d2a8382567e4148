"""Airflow's failure callback: one row per failed task try in ``ops.run_log``.

Writes ``ops.run_log`` (partition ``run_date``) through delta-rs (:func:`include.serving.lookup.insert_new`), because
the callback runs in the Airflow task process, where starting Spark for one row would cost more than the
row. A MERGE on (dag_id, task_id, run_id, try_number) makes a repeated callback a no-op. Reads the task's
context only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from include.core import tables
from include.core.config import load_settings
from include.core.log import setup
from include.serving import lookup

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000
KEYS = ("dag_id", "task_id", "run_id", "try_number")


def failure_row(context: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ops.run_log`` row of a failed task try: who, which run date, and the error's text."""
    ti = context["ti"]
    params = context.get("params") or {}
    error = context.get("exception")
    return {
        "run_date": str(params.get("run_date") or context.get("ds") or ""),
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "try_number": int(ti.try_number or 0),
        "state": "failed",
        "error": (f"{type(error).__name__}: {error}" if error else "unknown error")[:MAX_ERROR_CHARS],
        "logged_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }


def on_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every Setlist task; never raises (a callback error would hide the real one)."""
    setup()
    try:
        row = failure_row(context)
        lookup.insert_new(tables.OPS_RUN_LOG, [row], KEYS, load_settings().lake)
        log.info("%s %s: failure recorded in ops.run_log", row["task_id"], row["run_date"])
    except Exception as exc:
        log.warning("could not record the failure in ops.run_log: %s", exc)
