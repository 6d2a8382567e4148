"""Setlist's shared code, in layers; a module imports only from its own layer and the layers below it.

``core`` (settings, table declarations, credentials, packaging) < ``lake`` (Spark sessions, Delta reads and
writes, landing files, the job harness) < ``quality`` (Great Expectations runs; the suites are in the top-level
``expectations`` package) < ``models`` (ALS, top-K, evaluation, model runs) < ``serving`` (SQL, lookups, the
explorer, the daily report) < ``orchestration`` (Airflow: DAG specs, operators, servers) < ``cli`` (the
``setlist`` command). ``spark_jobs`` sit above ``models`` and ``serving``; ``dags`` above ``orchestration``.
Everything but ``cli`` ships to Spark executors with ``--py-files``. The rule is checked by ``make lint``
(import-linter, contracts in ``pyproject.toml``).
"""
