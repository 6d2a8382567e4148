"""The nightly DAG's calendar-day timetable, as Airflow's scheduler and backfills use it."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from pendulum import UTC, DateTime

from include.orchestration.timetable import CalendarDayTimetable

pytestmark = pytest.mark.unit


def day(d: int, month: int = 2, hour: int = 0) -> DateTime:
    return DateTime(2026, month, d, hour, tzinfo=UTC)


def test_a_backfill_from_the_1st_to_the_3rd_at_midnight_runs_three_days():
    """What a backfill asks (``iter_dagrun_infos_between``'s loop): one run per calendar day in the range,
    logical date at midnight, started at the nightly hour after the day ends."""
    timetable, restriction = CalendarDayTimetable(2), TimeRestriction(day(1), day(3), catchup=True)
    infos, info = [], None
    while info := timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction):
        infos.append(info)
    assert [(i.logical_date, i.data_interval.end, i.run_after) for i in infos] == [
        (day(d), day(d + 1), day(d + 1, hour=2)) for d in (1, 2, 3)
    ]
    # a from-date inside a day starts at the next whole day
    inside = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(day(1, hour=5), None, catchup=True)
    )
    assert inside is not None and inside.logical_date == day(2)


def test_without_catch_up_the_first_run_is_the_newest_day_that_is_due():
    timetable = CalendarDayTimetable(2)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(day(1, month=1), None, catchup=False)
    )
    now = DateTime.now(UTC)
    assert info is not None and info.run_after <= now < info.run_after + dt.timedelta(days=1)
    following = timetable.next_dagrun_info(
        last_automated_data_interval=info.data_interval, restriction=TimeRestriction(day(1), None, catchup=False)
    )
    assert following is not None and following.logical_date == info.logical_date + dt.timedelta(days=1)


def test_a_manual_run_at_a_logical_date_processes_that_day():
    interval = CalendarDayTimetable(2).infer_manual_data_interval(run_after=day(2, hour=14))
    assert interval == DataInterval(day(2), day(3))


def test_the_dag_round_trips_through_airflows_serialization_with_the_plugin(monkeypatch):
    """The scheduler and the API server rebuild the timetable from the serialized DAG: that needs the class
    registered through the ``airflow.plugins`` entry point, and its hour kept."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    from include.core.config import PROJECT_ROOT
    from include.orchestration.dag_spec import DAG_ID

    monkeypatch.setenv("SETLIST_NIGHTLY_HOUR", "5")
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags")).dags[DAG_ID]
    rebuilt = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).timetable
    assert rebuilt == CalendarDayTimetable(5) and rebuilt.summary == "daily, runs at 05:00 UTC"
    assert not dag.catchup


def test_an_hour_outside_the_day_is_refused():
    with pytest.raises(ValueError, match=r"hour: must be 0\.\.23, got 24"):
        CalendarDayTimetable(24)
