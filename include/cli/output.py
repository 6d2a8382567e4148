"""How the command line prints rows: an aligned text table, CSV or JSON lines on stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

FORMATS = ("table", "csv", "json")


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[object]], fmt: str) -> None:
    if fmt == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[("" if v is None else v) for v in row] for row in rows])
    else:
        print(format_table(columns, rows))


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    fmt = "| " + " | ".join("{:<" + str(w) + "}" for w in widths) + " |"
    out = [line, fmt.format(*columns), line, *[fmt.format(*r) for r in cells], line, f"({len(cells)} rows)"]
    return "\n".join(out)
