"""``setlist recs`` and ``setlist sql --engine duckdb`` over a small lake."""

from __future__ import annotations

import pytest

from include.cli import main as cli
from include.serving import lookup

pytestmark = pytest.mark.unit


def test_cli_recs_and_duckdb_sql(lake, capsys):
    assert cli.main(["recs", "--lake", lake, "--user", "u1", "--k", "1", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ",".join(lookup.RECOMMENDATION_COLUMNS) and out[1].startswith("u1,1,t1,0.9,als,")
    assert cli.main(["recs", "--lake", lake, "--user", "nobody", "--k", "2", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "'nobody' is not in the newest run; the most popular tracks instead" in err
    assert [line.split(",")[1:5] for line in out.splitlines()[1:]] == [
        ["1", "t1", "1.0", "popular"],
        ["2", "t9", "0.5", "popular"],
    ]
    assert cli.main(["recs", "--lake", lake, "--user", "u1", "--k", "0"]) == 2
    assert "--k: must be between 1 and 1000, got 0" in capsys.readouterr().err
    query = "SELECT count(*) AS n FROM gold.recommendations"
    assert cli.main(["sql", "--engine", "duckdb", "--lake", lake, "--format", "json", query]) == 0
    assert capsys.readouterr().out.strip() == '{"n": 6}'
    assert cli.main(["sql", "--engine", "duckdb", "--lake", lake, "SELECT nope FROM gold.recommendations"]) == 2
    assert capsys.readouterr().err.startswith("setlist sql: Binder Error")
