"""The nightly DAG's first task waits for the day's completeness marker, then fails with one line."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.core.config import load_settings
from include.orchestration.dag_spec import landing_missing
from include.orchestration.dag_tasks import resolve_run_date_once_landed

pytestmark = pytest.mark.unit


def poke(lake, started: dt.datetime):
    context = {
        "params": {"run_date": "2026-11-20"},
        "logical_date": None,
        "dag_run": SimpleNamespace(start_date=started),
    }
    return resolve_run_date_once_landed.function(**context)


def test_the_run_waits_for_the_marker_then_returns_the_day(tmp_path, monkeypatch):
    monkeypatch.setenv("SETLIST_LAKE", str(tmp_path))
    folder = tmp_path / "landing" / "interactions" / "date=2026-11-20"
    folder.mkdir(parents=True)
    (folder / "part-00000.csv").write_text("still being written")
    now = dt.datetime.now(dt.UTC)
    assert poke(tmp_path, now).is_done is False
    assert landing_missing(load_settings(), "2026-11-20") == f"{folder}/_SUCCESS"
    with pytest.raises(AirflowFailException) as late:
        poke(tmp_path, now - dt.timedelta(minutes=181))
    assert str(late.value) == (
        f"landing for 2026-11-20 is not complete after 181 min: {folder}/_SUCCESS is missing"
        " (SETLIST_LANDING_WAIT_MINUTES=180)"
    )
    (folder / "_SUCCESS").write_text("")
    done = poke(tmp_path, now)
    assert (done.is_done, done.xcom_value) == (True, "2026-11-20")


def test_nothing_is_waited_for_without_a_marker_setting_or_when_a_missing_day_is_written_empty(tmp_path):
    assert landing_missing(load_settings(lake=str(tmp_path), landing_marker=""), "2026-11-20") is None
    assert landing_missing(load_settings(lake=str(tmp_path), missing_day="empty"), "2026-11-20") is None
    assert landing_missing(load_settings(lake=str(tmp_path)), "2026-11-20") is not None
