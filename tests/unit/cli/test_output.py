"""How the command line prints rows."""

from __future__ import annotations

import pytest

from include.cli.output import format_table

pytestmark = pytest.mark.unit

AFFINITY = "user_key int, track_key int, latest_rating double, strength double"


def test_format_table_aligns_columns_and_counts_rows():
    out = format_table(["user_id", "rank"], [["user_1", 1], ["u", None]]).splitlines()
    assert out[1] == "| user_id | rank |"
    assert out[3] == "| user_1  | 1    |" and out[4] == "| u       | NULL |"
    assert out[-1] == "(2 rows)"
