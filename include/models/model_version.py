"""Deterministic model versions: the same date, mode and parameters always name the same model.

Reads and writes nothing. ``train_als`` saves under this name and ``recommend`` loads it, so the two
jobs agree without passing state, and a rerun overwrites the same version instead of adding one.
"""

from __future__ import annotations

from include.core.config import Settings
from include.models.als import AlsParams


def model_version(settings: Settings, run_date: str) -> str:
    params = AlsParams.of(settings)
    return f"als-{params.mode}-{run_date}-{params.digest()}"
