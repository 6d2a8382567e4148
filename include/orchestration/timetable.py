"""The nightly DAG's schedule: one run per calendar day (UTC), started at the nightly hour after the day ends.

A run's data interval is the day itself, midnight to midnight, and its logical date is that midnight, so a
backfill from 1 to 3 February (``T00:00`` bounds, as the UI's Backfill form sends them) runs three days. The
run starts ``hour`` hours after its day ends, as the cron schedule before it did, so run ids (named by when a
run starts) keep their form. Airflow finds the class through the ``airflow.plugins`` entry point of this
package (``SetlistPlugin``): the scheduler and the API server rebuild the DAG's timetable from its
serialized form. Reads and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import UTC, DateTime

DAY = dt.timedelta(days=1)


def _midnight(when: dt.datetime) -> DateTime:
    """The UTC midnight that starts the calendar day of ``when``."""
    day = when.astimezone(UTC).date()
    return DateTime(day.year, day.month, day.day, tzinfo=UTC)


class CalendarDayTimetable(Timetable):
    """Data interval: a UTC calendar day; the run starts ``hour`` hours after the day ends."""

    def __init__(self, hour: int = 0) -> None:
        if not 0 <= hour <= 23:
            raise ValueError(f"hour: must be 0..23, got {hour!r}")
        self.hour = hour
        self.description = f"Each UTC calendar day, run at {hour:02d}:00 UTC the day after"

    @property
    def summary(self) -> str:
        return f"daily, runs at {self.hour:02d}:00 UTC"

    def serialize(self) -> dict[str, Any]:
        return {"hour": self.hour}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(int(data.get("hour", 0)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CalendarDayTimetable) and other.hour == self.hour

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.hour))

    def _info(self, start: DateTime) -> DagRunInfo:
        end = start + DAY
        return DagRunInfo(run_after=end + dt.timedelta(hours=self.hour), data_interval=DataInterval(start, end))

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A manual run at a logical date processes that date's day."""
        start = _midnight(run_after)
        return DataInterval(start=start, end=start + DAY)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        earliest = restriction.earliest
        # the first whole day at or after the start date (or a backfill's from-date)
        first = None if earliest is None else _midnight(earliest - dt.timedelta(microseconds=1)) + DAY
        if last_automated_data_interval is not None:
            start = _midnight(last_automated_data_interval.start) + DAY
        elif first is None:
            return None  # no start date: nothing to schedule
        else:
            start = first
        if not restriction.catchup:  # without catch-up: at the earliest, the newest day whose run is due now
            start = max(start, _midnight(DateTime.now(UTC) - dt.timedelta(hours=self.hour)) - DAY)
        if first is not None:
            start = max(start, first)
        if restriction.latest is not None and start > restriction.latest:
            return None
        return self._info(start)


class SetlistPlugin(AirflowPlugin):
    """Registers Setlist's timetable with Airflow (entry point ``airflow.plugins`` in ``pyproject.toml``)."""

    name = "setlist"
    timetables = [CalendarDayTimetable]  # noqa: RUF012 (the base class declares it a plain list)
