"""Shared command-line plumbing for the Spark jobs: common arguments, progress lines, clear failures.

Reads command-line arguments and ``SETLIST_*`` settings; writes progress lines to stdout and one
error line to stderr when a job stops for a known reason.
"""

from __future__ import annotations

import logging
import datetime as dt
import importlib
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
from dataclasses import dataclass

from include.core.commands import CommandExit, invoke
from include.core.config import MODEL_SETTINGS, ConfigError, Settings, load_settings, parse_run_date
from include.lake import faults

log = logging.getLogger(__name__)

EXIT_USAGE = 2  # an invalid argument or setting
EXIT_DATA = 3  # the input cannot give the output (landing contract, a quality gate, an ALS fit)
EXIT_CONFLICT = 4  # other writers kept committing first: a later run can pass
# A retry meets the same arguments and input: the DAG's Spark tasks fail at once on these (spark_operator).
FINAL_EXIT_CODES = frozenset({EXIT_USAGE, EXIT_DATA})


class LandingError(RuntimeError):
    """Landing files are missing or do not follow the raw CSV contract."""


class DataQualityError(RuntimeError):
    """A gate between layers failed; the message names each failed expectation and its counts."""


class FitError(RuntimeError):
    """ALS could not fit its parameters on this input (``include.models.als.fit`` says why)."""


@dataclass(frozen=True)
class JobContext:
    """What every job needs: the step name, the run date, the Airflow run id and the settings."""

    step: str
    run_date: dt.date
    run_id: str
    settings: Settings

    @property
    def ds(self) -> str:
        return self.run_date.isoformat()

    def log(self, message: str) -> None:
        log.info("%s %s: %s", self.step, self.ds, message)


def command(step: str, description: str, model_args: bool = False, settings_args: Sequence[str] = ()) -> click.Command:
    """Options every job takes; ``model_args`` adds the ALS settings and ``settings_args`` the named settings
    (default: $SETLIST_* or built-in). The command returns the options as parsed, for :func:`context`."""
    params: list[click.Parameter] = [
        click.Option(["--run-date"], required=True, help="the partition to process, YYYY-MM-DD"),
        click.Option(["--lake"], default=None, help="lake root (default: $SETLIST_LAKE or ./lake)"),
        click.Option(["--run-id"], default="manual", help="the Airflow run id, recorded with the output"),
    ]
    names = [*(MODEL_SETTINGS if model_args else ()), *settings_args]
    params += [click.Option(["--" + name.replace("_", "-"), name], default=None) for name in names]
    return click.Command(step, params=params, help=description, callback=lambda **options: options)


def context(step: str, options: Mapping[str, Any]) -> JobContext:
    fixed = ("run_date", "lake", "run_id")
    overrides = {k: v or None for k, v in options.items() if k not in fixed}  # "": unset (an empty DAG param)
    settings = load_settings(lake=options["lake"], **overrides)
    return JobContext(step, parse_run_date(options["run_date"], "--run-date"), options["run_id"], settings)


def preload(module: str) -> None:
    """Import ``module`` in a background thread, so a slow import overlaps the Spark session's start."""
    threading.Thread(target=importlib.import_module, args=(module,), name=f"preload-{module}", daemon=True).start()


def run(step: str, body: Callable[[], None]) -> int:
    """Run a job body; known failures end with one clear line and a non-zero exit, not a stack trace."""
    from include.lake.delta_io import ConcurrentWriteError
    from include.lake.spark_conf import MissingJarsError

    from include.core import log as setlist_log

    setlist_log.setup()
    started = time.monotonic()
    try:
        body()
    except (ConfigError, MissingJarsError) as exc:
        log.error("%s: %s", step, exc)
        return EXIT_USAGE
    except (DataQualityError, LandingError, FitError) as exc:
        log.error("%s: FAILED: %s", step, exc)
        return EXIT_DATA
    except ConcurrentWriteError as exc:
        log.error("%s: FAILED: %s", step, exc)
        return EXIT_CONFLICT
    log.info("%s: done in %.1fs", step, time.monotonic() - started)
    return 0


def main(
    step: str,
    description: str,
    work: Callable[[SparkSession, JobContext], None],
    argv: Sequence[str] | None,
    model_args: bool = False,
    settings_args: Sequence[str] = (),
) -> int:
    """The whole ``main`` of a job: parse arguments, build settings and the session, run ``work``.

    Started as a program (``argv`` None) with ``SETLIST_JOB_FORKS`` set, the job runs in a child of the warm
    fork server of :mod:`include.lake.job_forks`, which has its imports done. Otherwise Great Expectations
    (about 5 s to import; every pipeline job validates) loads in the background while the session starts and
    the job reads its input.
    """
    try:
        options = invoke(command(step, description, model_args, settings_args), argv, step)
    except CommandExit as exc:
        return exc.code
    if argv is None:  # started as a program: a warm fork server, when there is one, runs it
        from include.core import log as setlist_log
        from include.lake import job_forks

        setlist_log.setup()
        code = job_forks.hand_off(step, sys.argv[1:])
        if code is not None:
            return code

    def body() -> None:
        ctx = context(step, options)
        faults.arm(step)
        from pyspark.sql import SparkSession

        from include.lake.spark import get_spark

        preload("include.quality.runner")
        own = SparkSession.getActiveSession() is None
        spark = get_spark(f"setlist-{step.replace('_', '-')}", ctx.settings)
        try:
            work(spark, ctx)
        finally:
            if own:  # a session on a shared Spark Connect server is released with everything it holds
                spark.stop()

    return run(step, body)
