"""Job entry points on bad input: one clear line and a non-zero exit, never a bare stack trace."""

from __future__ import annotations
import os
import subprocess
import sys
from pathlib import Path
import pytest
from include.core import schemas
from include.lake import jobs
from spark_jobs import build_silver, ingest_bronze
pytestmark = pytest.mark.integration


@pytest.mark.parametrize("command", ["run", "job"])
def test_missing_delta_jars_name_the_command(tmp_path, command):
    """Without the jars, neither the warm Spark (``setlist run``) nor a job's own driver starts: one line."""
    env = {k: v for k, v in os.environ.items() if k != "SETLIST_SPARK_REMOTE"}
    env.update(
        SETLIST_JARS_DIR=str(tmp_path / "no-jars"), SETLIST_SPARK_MODE="connect" if command == "run" else "submit"
    )
    bin_dir = Path(sys.executable).parent
    if command == "run":
        argv = [str(bin_dir / "setlist"), "run", "--lake", str(tmp_path), "--date", "2026-11-20"]
    else:
        argv = [sys.executable, "-m", "spark_jobs.ingest_bronze", "--run-date", "2026-11-20", "--lake", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    err = done.stderr.strip().splitlines()
    assert done.returncode == jobs.EXIT_USAGE
    assert len(err) == 1 and "Delta jars not found" in err[0] and "make jars" in err[0], done.stderr


def test_invalid_run_date_names_the_argument(tmp_path, capsys):
    code = build_silver.main(["--run-date", "2026-13-01", "--lake", str(tmp_path)])
    assert code == jobs.EXIT_USAGE
    assert "--run-date: expected a date as YYYY-MM-DD, got '2026-13-01'" in capsys.readouterr().err
