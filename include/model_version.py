"""Deterministic model versions: the same date, mode and parameters always name the same model.

Reads and writes nothing. ``train_als`` saves under this name and ``recommend`` loads it, so the two
jobs agree without passing state, and a rerun overwrites the same version instead of adding one.
"""

from __future__ import annotations

import hashlib
import json

from include.config import Settings


def als_params(settings: Settings) -> dict[str, object]:
    params: dict[str, object] = {
        "mode": settings.als_mode,
        "rank": settings.rank,
        "max_iter": settings.max_iter,
        "reg_param": settings.reg_param,
        "seed": settings.seed,
    }
    if settings.als_mode == "implicit":
        params["alpha"] = settings.alpha
    return params


def model_version(settings: Settings, run_date: str) -> str:
    digest = hashlib.sha256(json.dumps(als_params(settings), sort_keys=True).encode()).hexdigest()[:8]
    return f"als-{settings.als_mode}-{run_date}-{digest}"
