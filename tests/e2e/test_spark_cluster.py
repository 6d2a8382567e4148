"""The multi-machine path on one machine: the e2e lake's first day ran through ``setlist run`` (Airflow's
``dags test`` on PostgreSQL, real spark-submits) with its warm Spark as the driver of a Spark standalone
cluster (the ``first_day`` fixture). Executors ran on the workers; the jobs' code stays in the client (no Python
UDFs); the Delta jars reach them as ``spark.jars``. The gold contract of that day is checked by
``test_nightly_dag``, which also runs the day again on the local warm Spark from the UI (nothing changes);
here, where it ran."""

from __future__ import annotations

import pytest

from include.lake.spark_conf import JIT_OPTIONS
from tests.e2e.conftest import FirstDay

pytestmark = pytest.mark.e2e


def test_the_first_day_ran_its_jobs_on_the_workers_of_a_loopback_cluster(first_day: FirstDay):
    assert first_day.listen_addresses and all(
        addresses and all(a.startswith("127.") for a in addresses) for addresses in first_day.listen_addresses.values()
    ), first_day.listen_addresses
    assert first_day.worker_cores == [1, 1]
    # the warm Spark of `setlist run` was the cluster's one application, and each worker ran an executor of it
    [app] = [a for a in first_day.apps if a["name"] == "setlist-spark"]
    assert all(app["id"] in ran for ran in first_day.apps_per_worker), first_day.apps_per_worker
    # the executors compile the driver's generated classes with the driver's JIT thresholds
    assert len(first_day.executor_commands) >= 2, first_day.executor_commands
    for command in first_day.executor_commands:
        assert all(option in command for option in JIT_OPTIONS.split()), command
