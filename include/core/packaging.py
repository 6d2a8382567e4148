"""Zips the ``include`` and ``expectations`` packages (less the command line, ``include.cli``) for
``spark-submit --py-files``.

Reads the package sources; writes ``<project>/.build/setlist-<hash>.zip`` (content-addressed, so an
unchanged tree reuses the same file and executors on other machines can import the shared code).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

from include.core.config import PROJECT_ROOT

PACKAGES = ("include", "expectations")
LOCAL_ONLY = ("include/cli",)  # commands run where `setlist` runs; executors never import them


def _shipped(path: Path, root: Path) -> bool:
    rel = path.relative_to(root).as_posix()
    return "__pycache__" not in path.parts and not any(rel.startswith(p + "/") for p in LOCAL_ONLY)


def _sources(root: Path) -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py") if _shipped(p, root))


def _digest(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(root)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def code_version(root: Path = PROJECT_ROOT) -> str:
    """The shared code's content hash, recorded with each model run: the ``--py-files`` zip's own name
    when the code was loaded from it (under spark-submit), else computed from the sources."""
    zipped = re.search(r"setlist-([0-9a-f]{12})\.zip", __file__)
    return zipped.group(1) if zipped else _digest(_sources(root), root)


def build_py_files(root: Path = PROJECT_ROOT, out_dir: Path | None = None) -> str:
    """Build (or reuse) the zip and return its path."""
    files = _sources(root)
    out_dir = out_dir or root / ".build"
    target = out_dir / f"setlist-{_digest(files, root)}.zip"
    if not target.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, f.relative_to(root).as_posix())
        tmp.replace(target)
    return str(target)
