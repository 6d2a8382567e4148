"""MkDocs hook: the reference pages are generated from the code when the site is built (include/cli/reference.py),
and BENCHMARKS.md, the record of every measurement, is published as it is."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    from include.cli.main import cli
    from include.cli.reference import cli_markdown, configuration_markdown

    record = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    pages = {
        "reference/configuration.md": configuration_markdown(),
        "reference/cli.md": cli_markdown(cli),
        "reference/benchmarks-record.md": record,
    }
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
