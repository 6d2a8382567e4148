from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest

from include.orchestration.airflow_run import one_at_a_time

pytestmark = pytest.mark.unit

HOLD = """
import sys, time
from pathlib import Path
from include.orchestration.airflow_run import one_at_a_time
with one_at_a_time(Path(sys.argv[1]), "setlist run (pid 1) of setlist_nightly for 2026-11-03"):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_run_waits_for_the_first_and_names_it(tmp_path, caplog):
    lock = tmp_path / "home" / "setlist-run.lock"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), "2"], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None and first.stdout.readline() == "holding\n"
    started = time.monotonic()
    with caplog.at_level(logging.INFO), one_at_a_time(lock, "second"):
        waited = time.monotonic() - started  # until the first released the lock, about 2 s after it took it
        assert lock.read_text() == "second"
    assert waited > 1.0
    assert "waiting for setlist run (pid 1) of setlist_nightly for 2026-11-03 to finish" in caplog.text
    assert first.wait() == 0


def test_a_run_killed_by_sigkill_leaves_the_lock_free(tmp_path, caplog):
    lock = tmp_path / "setlist-run.lock"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), "60"], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None and first.stdout.readline() == "holding\n"
    first.kill()
    first.wait()
    with caplog.at_level(logging.INFO), one_at_a_time(lock, "next"):
        pass
    assert "waiting" not in caplog.text
