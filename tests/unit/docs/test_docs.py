"""The README and the documentation site show only what exists: every `make` target and every `setlist` command
and option they show is one the Makefile and the click commands have, and the generated references list every
setting and every command."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from include.cli.main import cli
from include.cli.reference import cli_markdown, configuration_markdown
from include.core.config import ENV_VARS, OTHER_VARIABLES, PROJECT_ROOT

pytestmark = pytest.mark.unit

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]


def _code(text: str) -> list[str]:
    """Every line of code the page shows: fenced blocks (continuation lines joined) and inline code."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()] + inline


def shown(pattern: str) -> list[tuple[Path, str, str]]:
    """(page, first group, rest of the command) for each match of ``pattern`` in the pages' code."""
    found = []
    for page in PAGES:
        for line in _code(page.read_text(encoding="utf-8")):
            for match in re.finditer(pattern, line):
                rest = re.split(r"\s(?:#|\||&&|;)", match.group(2) or "")[0]
                found.append((page, match.group(1), rest))
    return found


def test_every_make_target_shown_is_in_the_makefile():
    targets = set(re.findall(r"(?m)^([a-z][a-z-]*):", (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")))
    uses = shown(r"(?:^|[\s(])make ([a-z][a-z-]*)()")
    assert {"demo", "test", "airflow", "docs", "check"} <= {target for _, target, _ in uses}
    missing = [(page.name, target) for page, target, _ in uses if target not in targets]
    assert not missing


def test_every_setlist_command_and_option_shown_exists():
    uses = shown(r"(?:^|[\s/(])setlist ([a-z][a-z-]*)(?![\w=])((?:\s[^\n]*)?)")
    assert len(uses) > 20 and {"run", "sql", "recs", "evaluate", "airflow"} <= {cmd for _, cmd, _ in uses}
    ctx = click.Context(cli)
    wrong = []
    for page, name, rest in uses:
        command = cli.get_command(ctx, name)
        if command is None:
            wrong.append((page.name, name, "no such command"))
            continue
        options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        wrong += [
            (page.name, name, opt) for opt in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest) if opt not in options
        ]
    assert not wrong


def test_the_references_list_every_setting_and_command():
    configuration = configuration_markdown()
    assert all(f"`{var}`" in configuration for var in [*ENV_VARS.values(), *OTHER_VARIABLES])
    assert "| `SETLIST_RANK` | integer | unset | 1 to 500 |" in configuration
    commands = cli_markdown(cli)
    assert all(f"## `setlist {name}`" in commands for name in cli.commands)
    assert "| `--train [auto\\|always\\|never]` |" in commands  # an option with its choices and its help
