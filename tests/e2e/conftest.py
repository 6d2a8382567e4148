"""The e2e lake: two generated days (one with bad lines) run through Airflow once per test session, then
shared by the tests of the pipeline's output and of the explorer."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.generate import GenerateSpec, generate

DAYS = ("2026-11-01", "2026-11-02")
K = 10
BAD_LINE = "ev_bad_1,user_000001,trk_0000001,not-a-time,100,false,false,\n"
SHORT_LINE = "ev_bad_2,user_000001\n"


def setlist(*args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "setlist")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=1500)


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("e2e-lake")
    generate(
        GenerateSpec(
            lake=str(root), start=dt.date(2026, 11, 1), days=2, users=60, tracks=200, events_per_day=1500, seed=3
        ),
        log=None,
    )
    day2 = root / "landing" / "interactions" / "date=2026-11-02" / "part-00000.csv"
    with open(day2, "a", encoding="utf-8") as fh:
        fh.write(BAD_LINE + SHORT_LINE)
    result = setlist("run", "--lake", str(root), "--date", *DAYS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("ingest_bronze", "build_silver", "build_gold"):
        assert result.stdout.count(f"[setlist] {step}: done") == 2
    # Several dates run like a backfill: only the newest one trains and recommends.
    assert f"newest_day {DAYS[0]}: skip training (train=never)" in result.stdout
    assert f"newest_day {DAYS[1]}: train (train=auto: no newer run)" in result.stdout
    for step in ("train_als", "recommend"):
        assert result.stdout.count(f"[setlist] {step}: done") == 1
    return str(root)
