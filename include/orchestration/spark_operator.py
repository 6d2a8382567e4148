"""The operator of the DAG's Spark tasks: Airflow's ``SparkSubmitOperator``, Spark Connect aware.

When the ``spark_default`` connection names a Spark Connect server (``sc://host:port``), the task runs
``spark-submit --remote sc://host:port``: the job is a client of that warm Spark, only the settings a
client session may change are passed (the server was started with the rest), and spark-submit's own JVMs
start light (:func:`include.lake.spark_conf.client_jvm_env`). Any other master
(``local[*]``, ``spark://``, ``yarn``, ``k8s://``) is submitted exactly as the provider does. The client's
token comes from ``SPARK_CONNECT_AUTHENTICATE_TOKEN`` in the worker's environment, never from the command
line that the task log shows. A Connect server that is still starting (``setlist run`` starts it beside
Airflow) is waited for before the submit. A job that ends with one of ``include.lake.jobs.FINAL_EXIT_CODES``
(invalid arguments, input that cannot give the output) fails its task without the retries.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from include.lake.jobs import FINAL_EXIT_CODES
from include.lake.spark_conf import SESSION_KEYS, client_jvm_env

CONNECT_SCHEME = "sc://"


def remote_args(args: list[str]) -> list[str]:
    """spark-submit arguments for a Connect client: ``--remote`` instead of ``--master``, and of the
    ``--conf`` settings only those of a session (a client has no driver to configure)."""
    out: list[str] = []
    it = iter(args)
    for arg in it:
        value = next(it) if arg in ("--master", "--conf", "--driver-memory") else None
        if arg == "--master":
            out += ["--remote", str(value)]
        elif arg == "--conf" and str(value).split("=", 1)[0] in (*SESSION_KEYS, "spark.pyspark.python"):
            out += [arg, str(value)]
        elif value is None:
            out.append(arg)
    return out


class ConnectAwareSubmitHook(SparkSubmitHook):
    def submit(self, application: str = "", **kwargs: Any) -> str | None:
        master = str(self._connection["master"])
        if master.startswith(CONNECT_SCHEME):  # a warm Spark that is still starting is waited for
            from include.orchestration import spark_server

            if (waited := spark_server.wait_for_remote(master)) >= 1:
                self.log.info("waited %.1fs for the Spark Connect server at %s to start", waited, master)
        try:
            return super().submit(application, **kwargs)
        except AirflowException as exc:
            if getattr(self._submit_sp, "returncode", None) not in FINAL_EXIT_CODES:
                raise  # a crash, a lost server or a write conflict: the task's retries may pass
            raise AirflowFailException(
                f"{exc} The job stopped for a reason a retry cannot change (its error line is above):"
                " the task fails without retrying"
            ) from None

    def _build_spark_common_args(self) -> list[str]:
        args = super()._build_spark_common_args()
        if str(self._connection["master"]).startswith(CONNECT_SCHEME):
            from include.core.config import load_settings

            # the hook sets the environment of spark-submit's process from this (a copy of the worker's, plus it)
            self._env = {**(self._env or {}), **client_jvm_env(load_settings().jars_dir, os.environ)}
            return remote_args(args)
        return args


class SparkJobOperator(SparkSubmitOperator):
    """``SparkSubmitOperator`` that submits with ``--remote`` to a Spark Connect connection."""

    def _get_hook(self) -> SparkSubmitHook:
        hook: Any = super()._get_hook()
        # The provider builds its hook in one place with two dozen arguments; the subclass only changes how
        # the master argument is spelled, so the built hook takes its class rather than a copy of that list.
        hook.__class__ = ConnectAwareSubmitHook
        return hook  # type: ignore[no-any-return]
