"""The documentation site's reference pages, generated from the code so they cannot drift from it: every setting
of :class:`include.core.config.Settings` (its variable, type, default, range or choices and description), the
variables read outside it, and every ``setlist`` command with its options and their help (from click).

Reads: the settings model and the click commands. Writes: nothing (``docs/hooks.py`` puts the pages in the site).
"""

from __future__ import annotations

import types
from typing import Any, Literal, get_args, get_origin

import click
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from include.core.config import ENV_VARS, OTHER_VARIABLES, PROJECT_ROOT, RANGES, Settings


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type(annotation: Any) -> str:
    """A field's type as a reader knows it: int, number, text, true/false, one of the choices, a secret."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (types.UnionType,) or (args and type(None) in get_args(annotation)):
        return _type(args[0])
    if get_origin(annotation) is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if annotation is SecretStr:
        return "text (secret)"
    names = {int: "integer", float: "number", str: "text", bool: "true/false"}
    return names.get(annotation, next((names[a] for a in args if a in names), "text"))


def _default(name: str, field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "`./lake` (project root)" if name == "lake" else "computed"
    value = field.get_default()
    if value is None:
        return "unset"
    if name == "pyspark_python":
        return "this Python"
    if isinstance(value, str) and value.startswith(str(PROJECT_ROOT)):
        return f"`./{value.removeprefix(str(PROJECT_ROOT)).lstrip('/')}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value != "" else "empty"


def _allowed(name: str) -> str:
    if name in RANGES:
        return " to ".join(str(int(v)) if float(v).is_integer() else str(v) for v in RANGES[name])
    return ""


def configuration_markdown() -> str:
    """The configuration reference: one row per ``SETLIST_*`` variable."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings model (`include/core/config.py`) when the site is built. Every setting is a",
        "`SETLIST_*` environment variable; an invalid value stops the command with one line naming the variable and",
        "what it allows. The DAG's params take their ranges and choices from the same model.",
        "",
        "| variable | type | default | allowed | what it does |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(
            f"| `{ENV_VARS[name]}` | {_type(field.annotation)} | {_default(name, field)} | {_allowed(name)} "
            f"| {_cell(field.description or '')} |"
        )
    lines += [
        "",
        "## Read outside the settings",
        "",
        "Logins and secrets (never part of the settings, never logged) and the variables Setlist sets for the",
        "processes it starts.",
        "",
        "| variable | what it does |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_cell(text)} |" for name, text in OTHER_VARIABLES.items()]
    return "\n".join(lines) + "\n"


def _commands(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command, click.Context]]:
    found = []
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx)
        found.append((f"{ctx.command_path} {name}", command, sub))
        if isinstance(command, click.Group):
            found += _commands(command, sub)
    return found


def cli_markdown(root: click.Group) -> str:
    """The CLI reference: every command of ``root``, its usage, help and options (click's own help texts)."""
    top = click.Context(root, info_name=root.name)
    lines = [
        "# CLI reference",
        "",
        "Generated from the click commands (`include/cli/`) when the site is built; `setlist COMMAND --help` prints",
        "the same. Installed by `make setup` as `.venv/bin/setlist`.",
        "",
    ]
    for path, command, ctx in _commands(root, top):
        lines += [f"## `{path}`", "", _cell(command.help or command.short_help or "").strip(), ""]
        lines += ["```", f"{path} {' '.join(command.collect_usage_pieces(ctx))}", "```", ""]
        options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
        records = [r for p in options if (r := p.get_help_record(ctx)) is not None]
        arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
        if arguments:
            lines.append("Arguments: " + ", ".join(f"`{a.make_metavar(ctx)}`" for a in arguments) + ".")
            lines.append("")
        if records:
            lines += ["| option | what it does |", "|---|---|"]
            here = str(PROJECT_ROOT)  # defaults under the project print as ./..., not as this machine's path
            lines += [f"| `{_cell(names)}` | {_cell(text.replace(here, '.'))} |" for names, text in records]
            lines.append("")
    return "\n".join(lines) + "\n"
