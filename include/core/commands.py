"""Click commands run as functions, for ``setlist``, ``setlist evaluate`` and every job's ``main``.

Reads the arguments it is given (``sys.argv`` when none); writes click's usage messages to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click


class CommandExit(Exception):
    """The command ended before its body ran (``--help``, or a usage error click has already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def invoke(command: click.Command, argv: Sequence[str] | None, prog_name: str) -> Any:
    """The command's return value; :class:`CommandExit` with click's exit code (2 for a usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:  # not command.main(standalone_mode=False): it returns --help's exit code as if it were the result
        with command.make_context(prog_name, args) as ctx:
            return command.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help
        raise CommandExit(int(exc.exit_code)) from None
    except click.ClickException as exc:
        exc.show()
        raise CommandExit(exc.exit_code) from None
