"""The ``setlist`` command line: generate sample data, run the DAG, evaluate, query, serve. Runs where the
user runs it and is never shipped to executors. May import every other layer and ``spark_jobs``."""
