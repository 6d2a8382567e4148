"""The one place where Setlist settings are read: environment variables, then explicit overrides.

Reads: environment variables prefixed ``SETLIST_`` (see :data:`ENV_VARS`). Writes: nothing.
Importing this module is cheap (no Spark, no Airflow) so DAG files may use it at parse time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]

ALS_MODES = ("explicit", "implicit")
# connect: the DAG's Spark tasks are Spark Connect clients of one warm Spark (``spark-submit --remote``);
# submit: each task is its own spark-submit driver on ``spark_master`` (a cold JVM per task).
SPARK_MODES = ("connect", "submit")
MISSING_DAY_POLICIES = ("fail", "empty")  # a day with no interactions file: stop, or warn and write an empty day

# Allowed ranges, checked here and offered as the DAG's JSON-schema params: one source for both.
RANGES: dict[str, tuple[float, float]] = {
    "rank": (1, 500),
    "max_iter": (1, 100),
    "reg_param": (0.0, 100.0),
    "alpha": (0.0, 10_000.0),
    "top_k": (1, 1000),
    "shuffle_partitions": (1, 100_000),
    "als_blocks": (0, 10_000),
    "checkpoint_interval": (1, 100),
    "vacuum_retention_hours": (168, 87_600),  # at least 7 days of time travel
    "nightly_hour": (0, 23),  # UTC hour at which the nightly run for the day before starts
    "tune_seconds": (0, 86_400),  # 0: no tuning
    "codegen_min_rows": (0, 10**12),
    "promotion_tolerance": (0.0, 1.0),
}
# Settings a run may override per job or per DAG trigger.
MODEL_SETTINGS = ("als_mode", "rank", "max_iter", "reg_param", "alpha", "top_k")


class ConfigError(ValueError):
    """Invalid user input: the message names the field and its allowed values."""


def _default_lake() -> str:
    return str(PROJECT_ROOT / "lake")


def normalize_lake(root: str) -> str:
    """Return the lake root as Spark expects it: URIs unchanged, local paths absolute, no trailing slash."""
    root = root.strip()
    if not root:
        raise ConfigError("lake: must be a path or a URI such as s3a://bucket/setlist, got an empty value")
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def parse_run_date(value: str, field: str = "run_date") -> dt.date:
    """Parse YYYY-MM-DD or raise a :class:`ConfigError` naming ``field``."""
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{field}: expected a date as YYYY-MM-DD, got {value!r}") from None


@dataclass(frozen=True)
class Settings:
    """Typed, frozen settings for every Setlist job, command and DAG."""

    lake: str = dataclasses.field(default_factory=_default_lake)
    jars_dir: str = str(PROJECT_ROOT / ".jars")
    spark_master: str = "local[*]"
    spark_mode: str = "connect"
    spark_remote: str = ""  # sc://localhost:PORT of a running Spark Connect server; empty: setlist starts one
    codegen_min_rows: int = 200_000  # a job whose input has fewer rows runs interpreted (no code generation)
    shuffle_partitions: int = 4
    als_blocks: int = 0  # 0: one block per core of the cluster (defaultParallelism)
    als_mode: str = "implicit"
    rank: int = 20
    max_iter: int = 10
    reg_param: float = 0.1
    alpha: float = 10.0
    top_k: int = 10
    seed: int = 42
    checkpoint_interval: int = 5
    driver_memory: str = "4g"  # one warm driver runs every job of a day; 10M events a day fit (BENCHMARKS.md)
    pyspark_python: str = sys.executable
    missing_day: str = "fail"
    vacuum_retention_hours: int = 168
    nightly_hour: int = 2
    als_biases: bool = True  # explicit mode: ALS on what the mean and user/track biases leave
    tune_seconds: int = 0  # time budget of the hyperparameter search on a validation split (0: none)
    promotion_tolerance: float = 0.02  # a new model may be this much (relative) worse than the champion
    dq_severity: str = ""  # check=severity,... overriding the suites' defaults (checked by the suites)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lake", normalize_lake(self.lake))
        if self.als_mode not in ALS_MODES:
            raise ConfigError(f"als_mode: must be one of {', '.join(ALS_MODES)}, got {self.als_mode!r}")
        if self.spark_mode not in SPARK_MODES:
            raise ConfigError(f"spark_mode: must be one of {', '.join(SPARK_MODES)}, got {self.spark_mode!r}")
        if self.spark_remote and not self.spark_remote.startswith("sc://"):
            raise ConfigError(
                f"spark_remote: must be a Spark Connect URL such as sc://localhost:15002, got {self.spark_remote!r}"
            )
        if self.missing_day not in MISSING_DAY_POLICIES:
            raise ConfigError(
                f"missing_day: must be one of {', '.join(MISSING_DAY_POLICIES)}, got {self.missing_day!r}"
            )
        for field, (low, high) in RANGES.items():
            check_range(field, getattr(self, field), low, high)

    @property
    def checkpoint_dir(self) -> str:
        return f"{self.lake}/_checkpoints"

    def jar_paths(self) -> list[str]:
        """The Delta jars resolved by ``make jars`` (empty when they are missing)."""
        folder = Path(self.jars_dir)
        return sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return from_mapping({**_as_strings(self), **{k: v for k, v in overrides.items() if v is not None}})


def check_range(field: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise ConfigError(f"{field}: must be between {low:g} and {high:g}, got {value!r}")


_INT_FIELDS = {
    "als_blocks",
    "codegen_min_rows",
    "shuffle_partitions",
    "rank",
    "max_iter",
    "top_k",
    "seed",
    "checkpoint_interval",
    "vacuum_retention_hours",
    "nightly_hour",
    "tune_seconds",
}
_FLOAT_FIELDS = {"reg_param", "alpha", "promotion_tolerance"}
_BOOL_FIELDS = {"als_biases"}
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")
FIELDS = tuple(f.name for f in dataclasses.fields(Settings))
ENV_VARS = {name: f"SETLIST_{name.upper()}" for name in FIELDS}


def _as_strings(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def _coerce(field: str, value: Any) -> Any:
    if field in _BOOL_FIELDS:
        word = str(value).strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise ConfigError(f"{field}: must be one of {', '.join(TRUE_WORDS + FALSE_WORDS)}, got {value!r}")
        return word in TRUE_WORDS
    try:
        if field in _INT_FIELDS:
            return int(value)
        if field in _FLOAT_FIELDS:
            return float(value)
    except (TypeError, ValueError):
        kind = "an integer" if field in _INT_FIELDS else "a number"
        raise ConfigError(f"{field}: must be {kind}, got {value!r}") from None
    return str(value)


def from_mapping(values: Mapping[str, Any]) -> Settings:
    """Build settings from field names to raw values; unknown fields are an error."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting; allowed settings are {', '.join(FIELDS)}")
    return Settings(**{k: _coerce(k, v) for k, v in values.items()})


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``SETLIST_*`` environment variables, then non-``None`` keyword overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {f: env[var] for f, var in ENV_VARS.items() if env.get(var, "") != ""}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(values)
