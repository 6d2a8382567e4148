"""Click commands run as functions: the command's value, or an exit code once click has said why."""

from __future__ import annotations

import pytest

from include.core.commands import CommandExit, invoke
from include.lake import jobs

pytestmark = pytest.mark.unit


def test_a_jobs_options_help_and_usage_errors(capsys):
    command = jobs.command("build_silver", "Silver from bronze.")
    options = invoke(command, ["--run-date", "2026-11-20", "--lake", "/tmp/lake"], "build_silver")
    assert options == {"run_date": "2026-11-20", "lake": "/tmp/lake", "run_id": "manual"}
    with pytest.raises(CommandExit) as help_:
        invoke(command, ["--help"], "build_silver")
    assert help_.value.code == 0 and "Silver from bronze." in capsys.readouterr().out
    with pytest.raises(CommandExit) as missing:
        invoke(command, [], "build_silver")
    assert missing.value.code == jobs.EXIT_USAGE
    assert "Missing option '--run-date'" in capsys.readouterr().err
