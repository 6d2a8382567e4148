"""Shared helpers of the integration tier."""

import json


def _land(lake, source: str, header: str, *lines: str, manifest: dict[str, int] | None = None, marker: bool = True):
    """One landing CSV for 2026-11-20, then (unless ``marker`` is false) its folder's ``_SUCCESS``: empty, or the
    given manifest."""
    folder = lake / "landing" / source / "date=2026-11-20"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-00000.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    if marker:
        (folder / "_SUCCESS").write_text("" if manifest is None else json.dumps({"files": manifest}))
    return folder
