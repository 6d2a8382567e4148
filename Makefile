# Setlist: `make demo` runs the pipeline on sample data; `make test` runs the whole suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LAKE ?= $(CURDIR)/lake
DEMO_START ?= 2026-11-01
DEMO_DAYS := 2026-11-01 2026-11-02 2026-11-03

.PHONY: setup venv jars browser postgres blas demo test test-unit check docs lint bench bench-quality bench-quality-tuned clean sql-server explorer airflow

setup: venv jars

venv: $(BIN)/.installed

$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	rm -rf setlist.egg-info  # a build by-product: beside the installed metadata it loads the Airflow plugin twice
	touch $@

# Delta's JVM jars, resolved once by Maven into .jars/ (ignored); Spark gets them through spark.jars.
# The SQL endpoint's login check is compiled against pyspark's own Hive classes.
SQL_AUTH_JAR := .jars/sql-auth/setlist-sql-auth.jar
# pip's pyspark folder: a whole Spark home (its jars, spark-class)
PYSPARK_HOME = $(BIN)/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
CDS := .jars/cds
jars: .jars/.resolved $(SQL_AUTH_JAR) $(CDS)/.built

.jars/.resolved: jars/pom.xml
	rm -rf .jars
	cd jars && mvn -q -B dependency:copy-dependencies -DoutputDirectory=../.jars -DincludeGroupIds=io.delta -DincludeScope=runtime
	touch $@

$(SQL_AUTH_JAR): $(wildcard jars/sql-auth/*.java) .jars/.resolved $(BIN)/.installed
	rm -rf .build/sql-auth && mkdir -p .build/sql-auth $(dir $@)
	javac --release 17 -d .build/sql-auth \
	  -cp "$$($(PYSPARK_HOME))/jars/*" $(filter %.java,$^)
	jar cf $@ -C .build/sql-auth .

# Class-data-sharing archives of the two JVMs a Connect client's spark-submit starts (see CLIENT_JIT in
# include/lake/spark_conf.py): dumped by one submit of an empty job; the JVMs ignore them after a pyspark upgrade
# until this reruns.
$(CDS)/.built: .jars/.resolved $(BIN)/.installed
	rm -rf $(CDS) && mkdir -p $(CDS) && : > $(CDS)/empty_job.py
	SPARK_HOME="$$($(PYSPARK_HOME))" \
	  SPARK_LAUNCHER_OPTS="-XX:ArchiveClassesAtExit=$(CDS)/launcher.jsa" \
	  SPARK_SUBMIT_OPTS="-XX:ArchiveClassesAtExit=$(CDS)/submit.jsa" SPARK_LOCAL_IP=127.0.0.1 \
	  $(BIN)/spark-submit --remote sc://localhost:1 $(CDS)/empty_job.py > $(CDS)/dump.log 2>&1
	test -s $(CDS)/launcher.jsa && test -s $(CDS)/submit.jsa
	touch $@

# Debian's chromium and chromedriver for the browser tests (selenium drives them; nothing is downloaded by a
# test tool). Installed with apt when missing: as root, or through sudo.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

# Debian's PostgreSQL server: Airflow's embedded metadata database (include/orchestration/metadata_db.py) and the
# e2e tier's configured one.
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; }

# Debian's OpenBLAS as the libblas.so.3 / liblapack.so.3 Spark's ALS looks for (optional): at rank 50 it fits
# about a quarter faster than the Java fallback, at the default rank 20 it is no faster (BENCHMARKS.md).
blas:
	@ldconfig -p | grep -q 'libblas.so.3 ' || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libopenblas0-pthread; }

demo: setup postgres
	$(BIN)/setlist generate --lake $(LAKE) --start $(DEMO_START) --days 3 --users 300 --tracks 1500 --events-per-day 10000
	$(BIN)/setlist run --lake $(LAKE) --date $(DEMO_DAYS)
	$(BIN)/setlist sql --engine duckdb --lake $(LAKE) "$$(cat include/serving/sql/demo_top10.sql)"

test: setup browser postgres lint docs
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest -m unit

# The edit loop: lint, types, the unit tier and the strict docs build (`make test` runs everything).
check: lint docs
	$(BIN)/pytest -m unit

# The documentation site (docs/, mkdocs.yml) into .build/site; strict: a broken link or a page missing from the
# navigation fails the build. The reference pages are generated from the code (docs/hooks.py).
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/bench_pipeline.py --events-per-day 100000 --days 1
	$(BIN)/python bench/bench_validation.py --events-per-day 1000000
	$(BIN)/python bench/bench_lookup.py --users 100000 --lookups 2000
	$(BIN)/python bench/bench_history.py --events-per-day 1000000 --users 20000 --tracks 50000 --days 30

# Model quality on MovieLens (research use only; read from ../shared, never committed): BENCHMARKS.md.
MOVIELENS ?= ../shared/data/ml-latest-small/ratings.csv
SPLITS ?= 5
EVALUATE = $(BIN)/setlist evaluate --source movielens --path $(MOVIELENS)
# What a user gets without flags (default start and tuning budget): on the seed-42 split, then 5 splits.
bench-quality: setup
	$(EVALUATE) --mode explicit
	$(EVALUATE) --mode implicit
	$(EVALUATE) --mode explicit --splits $(SPLITS)
	$(EVALUATE) --mode implicit --splits $(SPLITS)
# A longer search: every split tuned for TUNE_SECONDS on its own training split.
TUNE_SECONDS ?= 600
bench-quality-tuned: setup
	$(EVALUATE) --tune-seconds $(TUNE_SECONDS) --splits $(SPLITS) --mode explicit
	$(EVALUATE) --tune-seconds $(TUNE_SECONDS) --splits $(SPLITS) --mode implicit

# JDBC/ODBC endpoint on 127.0.0.1:$(SQL_PORT) over the lake's tables; Ctrl-C stops it.
SQL_PORT ?= 10000
sql-server: setup
	$(BIN)/setlist sql-server --lake $(LAKE) --port $(SQL_PORT)

# Airflow 3 (UI + REST API, scheduler, DAG processor) on http://127.0.0.1:$(AIRFLOW_PORT)/ with a login; Ctrl-C stops it.
AIRFLOW_PORT ?= 8080
airflow: setup postgres
	$(BIN)/setlist airflow --lake $(LAKE) --port $(AIRFLOW_PORT)

# The recommendations explorer on http://127.0.0.1:$(EXPLORER_PORT)/ (Streamlit, login); Ctrl-C stops it.
EXPLORER_PORT ?= 8501
explorer: setup
	$(BIN)/setlist explorer --lake $(LAKE) --port $(EXPLORER_PORT)

clean:
	rm -rf .build .airflow lake spark-warehouse
