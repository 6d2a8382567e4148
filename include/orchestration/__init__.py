"""Orchestration: Airflow and the processes the DAG runs on. The DAGs' specification (jobs, params, assets) and
calendar-day timetable, the Spark job operator, the Airflow environment and servers, the warm Spark (Connect
server) and a one-machine Spark standalone cluster, programmatic DAG runs and the run log. May import every
layer below it."""
