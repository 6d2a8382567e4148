from __future__ import annotations

import pytest

from include.core.config import ConfigError
from include.lake import faults

pytestmark = pytest.mark.unit


def test_a_fault_names_a_step_a_moment_and_a_table():
    assert faults.parse("build_silver:after:silver.quarantine") == faults.Fault(
        "build_silver", "after", "silver.quarantine"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("build_silver:after", "SETLIST_FAULT: expected STEP:WHEN:TABLE"),
        ("build_sliver:after:silver.quarantine", "SETLIST_FAULT: STEP must be one of ingest_bronze, build_silver"),
        ("build_silver:midway:silver.quarantine", "SETLIST_FAULT: WHEN must be one of before, during, after, got"),
        ("build_silver:after:silver.nothing", "SETLIST_FAULT: TABLE must be one of bronze.interactions,"),
    ],
)
def test_a_wrong_fault_is_refused_naming_the_part_and_the_allowed_values(text, message):
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.")):
        faults.parse(text)


def test_a_fault_is_armed_only_in_the_step_it_names(monkeypatch):
    monkeypatch.setenv(faults.FAULT_ENV, "recommend:before:gold.recommendations")
    faults.arm("build_gold")
    with faults.at("gold.recommendations", "/nowhere"):  # not this step's fault: the write goes on
        pass
    monkeypatch.delenv(faults.FAULT_ENV)
    faults.arm("recommend")
