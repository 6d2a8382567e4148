"""Passwords of the servers Setlist starts (SQL endpoint, explorer, Airflow): never in the repository.

Each comes from its environment variable or, when that is unset, is generated on first use, stored outside
the repository (``$XDG_CONFIG_HOME/setlist/<service>-password``, default ``~/.config``, mode 600) and
printed that once.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from include.core.log import show_once


def password_file(service: str) -> Path:
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "setlist" / f"{service}-password"


def password(service: str, env_var: str) -> str:
    """``env_var``'s value, else the stored password, else a new one: stored (mode 600) and shown once
    (:func:`include.core.log.show_once`: on the terminal only, never through logging)."""
    if os.environ.get(env_var):
        return os.environ[env_var]
    path = password_file(service)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    new = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new + "\n")
    show_once(f"generated the {service} password (shown once, stored in {path}): {new}")
    return new


def matches(given: str, expected: str) -> bool:
    """Compare in constant time, so response times say nothing about the password."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
