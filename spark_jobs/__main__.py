"""Every job's entry point: ``spark-submit [...] spark_jobs/__main__.py STEP [options]`` (what the DAG submits)
or ``python -m spark_jobs STEP [options]``.

Hands the job to the warm fork server (:mod:`include.lake.job_forks`) before importing anything heavy; without
one it runs ``spark_jobs/STEP.py``'s ``main`` here. ``spark-submit spark_jobs/STEP.py [options]`` runs the same
job. Reads and writes what the job does.
"""

from __future__ import annotations

import sys

from include.lake.job_forks import launch

if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
