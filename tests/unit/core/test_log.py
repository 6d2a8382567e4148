"""Setlist's logging: one format on the console, and the same records as events for ``setlist run``."""

from __future__ import annotations

import logging

import pytest

from include.cli import main as cli
from include.core import log as setlist_log

pytestmark = pytest.mark.unit


@pytest.fixture()
def events(tmp_path, monkeypatch):
    path = tmp_path / "run.events"
    monkeypatch.setenv(setlist_log.EVENTS_VAR, str(path))
    setlist_log.setup()
    yield path
    for name in setlist_log.PACKAGES:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, setlist_log.EventFile)]:
            logger.removeHandler(handler)


def test_records_reach_the_console_in_one_format_and_the_events_file(events, capsys):
    logging.getLogger("spark_jobs.build_gold").info("%s %s: %d rows", "build_gold", "2026-11-03", 42)
    logging.getLogger("include.orchestration.airflow_run").error("run %s: the DAG run failed", "2026-11-03")
    out, err = capsys.readouterr()
    assert out == "[setlist] build_gold 2026-11-03: 42 rows\n"
    assert err == "[setlist] run 2026-11-03: the DAG run failed\n"
    read, offset = setlist_log.read_events(events)
    assert [(e["logger"], e["level"], e["message"]) for e in read] == [
        ("spark_jobs.build_gold", "INFO", "build_gold 2026-11-03: 42 rows"),
        ("include.orchestration.airflow_run", "ERROR", "run 2026-11-03: the DAG run failed"),
    ]
    assert offset == events.stat().st_size
    setlist_log.setup()  # a second call adds no second handler
    logging.getLogger("include.lake.jobs").info("once")
    assert capsys.readouterr().out == "[setlist] once\n"
    assert [e["message"] for e in setlist_log.read_events(events, offset)[0]] == ["once"]


def test_the_cli_shows_a_runs_events_as_progress_and_waits_for_whole_lines(events, capsys):
    logging.getLogger("include.orchestration.airflow_run").info("run setlist_nightly for 2026-11-03")
    logging.getLogger("spark_jobs.ingest_bronze").info("ingest_bronze: done in 1.0s")
    capsys.readouterr()
    with open(events, "a", encoding="utf-8") as out:
        out.write('{"logger": "x", "message": "half')  # a record still being written
    offset = cli._show_events(events, 0)
    assert capsys.readouterr().out.splitlines() == [
        "[setlist] run setlist_nightly for 2026-11-03",
        "    [setlist] ingest_bronze: done in 1.0s",
    ]
    assert cli._show_events(events, offset) == offset
