"""Orchestration: Airflow. The DAGs' specification (jobs, params, assets), the Spark job operator, the Airflow
environment and servers, programmatic DAG runs and the run log. May import every layer below it."""
