# Setlist's one image, built from this repository with its own set-up (`make setup`): Java 17, the locked Python
# packages (Airflow 3, pyspark 4 with its spark-class and spark-submit, Great Expectations, ...), the Delta jars
# resolved by Maven, the SQL endpoint's login jar and the project code. Every service of docker-compose.yaml
# runs it: Airflow's components, the Spark master and workers, the Thrift SQL endpoint.
#   docker build -t setlist .
# Not built on the project's own machines (no Docker engine there): tests/unit/deploy checks it on paper.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/setlist
COPY requirements.lock requirements.txt pyproject.toml README.md Makefile ./
COPY jars ./jars
COPY include ./include
COPY spark_jobs ./spark_jobs
COPY expectations ./expectations
COPY dags ./dags
# .venv (pip install -r requirements.lock, then the project), .jars (Maven) and the SQL login jar (javac)
RUN make setup PY=python3

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 50000 setlist \
 && mkdir -p /opt/airflow /opt/setlist/lake \
 && chown setlist /opt/airflow /opt/setlist/lake
COPY --from=build /opt/setlist /opt/setlist
WORKDIR /opt/setlist
# the venv keeps its build-time path, so its scripts (airflow, setlist, spark-class, spark-submit) run as built
ENV PATH=/opt/setlist/.venv/bin:$PATH \
    SPARK_HOME=/opt/setlist/.venv/lib/python3.11/site-packages/pyspark \
    AIRFLOW_HOME=/opt/airflow \
    SETLIST_JARS_DIR=/opt/setlist/.jars \
    SETLIST_LAKE=/opt/setlist/lake
USER setlist
CMD ["setlist", "--help"]
