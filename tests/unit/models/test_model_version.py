"""The model version: deterministic, and changed by every parameter that changes the model."""

from __future__ import annotations

import pytest

from include.core.config import load_settings
from include.models.model_version import model_version

pytestmark = pytest.mark.unit


def test_model_version_is_deterministic_and_param_sensitive():
    a = load_settings(env={})
    assert model_version(a, "2026-11-20") == model_version(a, "2026-11-20")
    assert model_version(a, "2026-11-20") != model_version(a.with_overrides(rank=8), "2026-11-20")
    assert model_version(a, "2026-11-20").startswith("als-implicit-2026-11-20-")
