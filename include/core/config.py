"""The one place where Setlist settings are read: environment variables, then explicit overrides, into one
pydantic-settings model whose field declarations carry the types, ranges and choices.

Reads: environment variables prefixed ``SETLIST_`` (see :data:`ENV_VARS`). Writes: nothing.
Importing this module is cheap (no Spark, no Airflow) so DAG files may use it at parse time.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args
from urllib.parse import urlsplit

import annotated_types
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """Invalid user input: the message names the field and its allowed values."""


def _default_lake() -> str:
    return str(PROJECT_ROOT / "lake")


def normalize_lake(root: str) -> str:
    """Return the lake root as Spark expects it: URIs unchanged, local paths absolute, no trailing slash."""
    root = root.strip()
    if not root:
        raise ValueError("must be a path or a URI such as s3a://bucket/setlist, got an empty value")
    if "://" in root:
        return root.rstrip("/")
    path = Path(root).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"must be a folder or a URI such as s3a://bucket/setlist, got the file {str(path)!r}")
    return str(path)


def parse_run_date(value: str, field: str = "run_date") -> dt.date:
    """Parse YYYY-MM-DD or raise a :class:`ConfigError` naming ``field``."""
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{field}: expected a date as YYYY-MM-DD, got {value!r}") from None


def _word_bool(value: Any) -> Any:
    """Booleans from settings text: only these words, so a typo is an error rather than False."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise ValueError(f"must be one of {', '.join(TRUE_WORDS + FALSE_WORDS)}, got {value!r}")
    return word in TRUE_WORDS


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")
WordBool = Annotated[bool, BeforeValidator(_word_bool)]


# SQLAlchemy URLs Airflow's metadata database may have (PostgreSQL through psycopg2, or SQLite).
AIRFLOW_DB_SCHEMES = ("postgresql", "postgresql+psycopg2", "sqlite")


AlsSetting = Literal["rank", "max_iter", "reg_param", "alpha"]
# The best settings measured on MovieLens (BENCHMARKS.md, "Model quality"): explicit ALS on what the biases leave,
# implicit ALS on plays with confidence 1 + alpha * strength. Unset model settings mean these.
ALS_DEFAULTS: dict[str, dict[AlsSetting, float]] = {
    "explicit": {"rank": 50, "max_iter": 20, "reg_param": 0.15, "alpha": 5.0},
    "implicit": {"rank": 30, "max_iter": 15, "reg_param": 0.4, "alpha": 5.0},
}


class Settings(BaseSettings):
    """Typed, frozen settings for every Setlist job, command and DAG: ``SETLIST_<FIELD>`` environment variables,
    then explicit values. Ranges and choices are declared here; :data:`RANGES` and the DAG's params read them."""

    model_config = SettingsConfigDict(env_prefix="SETLIST_", env_ignore_empty=True, frozen=True, extra="forbid")

    lake: str = Field(
        default_factory=_default_lake,
        description="The lake's root: a local folder (default `./lake` in the project) or a URI such as "
        "`s3a://bucket/setlist`.",
    )
    jars_dir: str = Field(str(PROJECT_ROOT / ".jars"), description="Where `make jars` put the Delta jars.")
    spark_master: str = Field(
        "local[*]",
        description="The master of the warm Spark, of in-process sessions and, in `submit` mode, of `spark_default`: "
        "`local[*]`, `spark://host:7077`, ...",
    )
    spark_mode: Literal["connect", "submit"] = Field(
        "connect",
        description="`connect`: the DAG's Spark tasks are clients of one warm Spark Connect server; `submit`: each "
        "task is a spark-submit driver of its own.",
    )
    spark_remote: str = Field(
        "", description="`sc://host:port` of a Spark Connect server you run; empty: `setlist` starts one on loopback."
    )
    codegen_min_rows: int = Field(
        200_000,
        ge=0,
        le=10**12,
        description="A job whose input has fewer rows runs its queries interpreted (compiling them would cost more "
        "than it saves); 0: always compiled.",
    )
    shuffle_partitions: int = Field(4, ge=1, le=100_000, description="Spark's `spark.sql.shuffle.partitions`.")
    als_blocks: int = Field(0, ge=0, le=10_000, description="ALS user and item blocks; 0: one per core of the cluster.")
    als_mode: Literal["explicit", "implicit"] = Field(
        "implicit",
        description="`implicit`: preferences from plays with confidence weights; `explicit`: ratings. Also a DAG "
        "param.",
    )
    als_fits_at_once: int = Field(
        0,
        ge=0,
        le=64,
        description="ALS fits an evaluation runs side by side; 0: three when the training rows are fewer than "
        "`codegen_min_rows`, else one. The metrics do not depend on it.",
    )
    rank: int | None = Field(
        None, ge=1, le=500, description="ALS rank; unset: the mode's best known value (implicit 30, explicit 50)."
    )
    max_iter: int | None = Field(
        None, ge=1, le=100, description="ALS iterations; unset: the mode's best known value (implicit 15, explicit 20)."
    )
    reg_param: float | None = Field(
        None,
        ge=0.0,
        le=100.0,
        description="ALS regParam; unset: the mode's best known value (implicit 0.4, explicit 0.15).",
    )
    alpha: float | None = Field(
        None, ge=0.0, le=10_000.0, description="Implicit ALS's confidence scale; unset: the best known value (5)."
    )
    top_k: int = Field(10, ge=1, le=1000, description="The length of each user's list. Also a DAG param.")
    seed: int = Field(  # Spark's ALS takes a non-negative 32-bit seed
        42, ge=0, le=2**31 - 1, description="The seed of ALS and of the evaluation splits."
    )
    checkpoint_interval: int = Field(
        5, ge=1, le=100, description="ALS checkpoints every this many iterations (long lineages overflow the stack)."
    )
    driver_memory: str = Field(
        "4g",
        description="The driver's memory (the warm Spark's in `connect` mode): one warm driver runs every job of "
        "a day, and 10M events a day fit in the default.",
    )
    pyspark_python: str = Field(sys.executable, description="The Python of Spark's Python workers and executors.")
    missing_day: Literal["fail", "empty"] = Field(
        "fail", description="A day without an interactions file: `fail`, or `empty` (warn and write an empty day)."
    )
    vacuum_retention_hours: int = Field(
        168,
        ge=168,
        le=87_600,
        description="History `VACUUM` keeps: how far back time travel, and a rerun's rewind of the affinity state, "
        "reach (at least 7 days).",
    )
    snapshot_retention_days: int = Field(
        14,
        ge=1,
        le=3650,
        description="Days of `gold.track_popularity` snapshots `maintain` keeps; the day of the model in use always.",
    )
    affinity_fold_days: int = Field(
        7,
        ge=1,
        le=90,
        description="Days of silver `gold.user_track_affinity` reads on top of its folded state before "
        "`build_gold` folds them in (one MERGE that rewrites the state; the nights between write only their own "
        "day's figures).",
    )
    nightly_hour: int = Field(
        2, ge=0, le=23, description="The UTC hour at which the nightly run for the day before starts."
    )
    als_biases: WordBool = Field(
        True, description="Explicit mode: fit the mean and user and track biases, and ALS on what they leave."
    )
    serve_model: Literal["auto", "explicit", "implicit"] = Field(
        "auto",
        description="Explicit mode: the model that writes `gold.recommendations`. `auto`: implicit ALS on the same "
        "ratings when it ranks better on the evaluation split (NDCG at K), else the explicit model. Also a DAG "
        "param.",
    )
    tune_trials: int = Field(
        1000,
        ge=0,
        le=1000,
        description="`setlist evaluate`'s search tries at most this many candidates per split: the configured, "
        "the baseline and the best known settings, then the TPE search's; 0: no search. The nightly fit does not "
        "search.",
    )
    tune_seconds: int = Field(
        120,
        ge=0,
        le=86_400,
        description="`setlist evaluate`'s search starts no candidate after this many seconds per split; 0: no search.",
    )
    tuning_seconds: int = Field(
        900,
        ge=10,
        le=604_800,
        description="The tuning run's budget (`setlist tune`, the `setlist_tuning` DAG): its search starts no trial "
        "after this many seconds. Also that DAG's param.",
    )
    tuning_due_drop: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="A nightly evaluation this much (relative) worse than the tuned settings' own validation metric "
        "makes the next tuning run due at once; 0: never.",
    )
    promotion_tolerance: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="How much (relative) worse than the champion a new model may be and still replace "
        "`gold.recommendations`.",
    )
    dq_severity: str = Field(
        "",
        description="`check=warn|drop|fail,...` overriding the quality suites' default severities (any suite's "
        "check names).",
    )
    landing_marker: str = Field(
        "_SUCCESS",
        description="The file that marks a landing folder complete (Hadoop's convention, which Spark's writers "
        'follow); a JSON manifest `{"files": {"name.csv": rows}}` in it is checked too. Empty: no marker needed.',
    )
    landing_wait_minutes: int = Field(
        180, ge=0, le=10_080, description="How long the nightly run waits for the day's marker before it fails."
    )
    run_wait_minutes: int = Field(
        360,
        ge=0,
        le=10_080,
        description="How long `setlist run` waits for another live run of the same date (the scheduler's, a "
        "triggered one) before it gives up with one line.",
    )
    landing_max_file_mb: int = Field(
        4096, ge=1, le=1_048_576, description="A landing file over this size is refused before it is read."
    )
    landing_max_field_kb: int = Field(
        10_240, ge=1, le=1_048_576, description="A field over this size stops the read with one line."
    )
    airflow_db_url: SecretStr | None = Field(
        None,
        description="Airflow's metadata database (`postgresql+psycopg2://user:password@host:5432/airflow`, or "
        "`sqlite:////abs/path/airflow.db`, which refuses backfills while the scheduler writes); unset: a "
        "PostgreSQL of the Airflow home's own. A secret: never shown, never logged.",
    )

    @field_validator("lake", mode="after")
    @classmethod
    def _lake(cls, value: str) -> str:
        return normalize_lake(value)

    @field_validator("spark_remote", mode="after")
    @classmethod
    def _remote(cls, value: str) -> str:
        if value and not value.startswith("sc://"):
            raise ValueError(f"must be a Spark Connect URL such as sc://localhost:15002, got {value!r}")
        return value

    @field_validator("airflow_db_url", mode="after")
    @classmethod
    def _db_url(cls, value: SecretStr | None) -> SecretStr | None:
        scheme = urlsplit(value.get_secret_value()).scheme if value else ""
        if value and scheme not in AIRFLOW_DB_SCHEMES:  # the scheme only: the URL holds a password
            allowed = ", ".join(f"{s}://" for s in AIRFLOW_DB_SCHEMES)
            raise ValueError(f"must be a URL starting with one of {allowed}; got scheme {scheme!r}")
        return value

    @field_validator("landing_marker", mode="after")
    @classmethod
    def _marker(cls, value: str) -> str:
        if "/" in value or value.endswith(".csv") or value in (".", ".."):
            raise ValueError(f"must be a file name that is not a .csv file (e.g. _SUCCESS), got {value!r}")
        return value

    def als_value(self, name: AlsSetting) -> float:
        """A model setting as it applies: the configured value, else the mode's best known one."""
        value: float | None = getattr(self, name)
        return ALS_DEFAULTS[self.als_mode][name] if value is None else value

    def als_given(self) -> tuple[str, ...]:
        """The model settings set (an environment variable, a DAG param, a flag): every fit keeps them."""
        return tuple(n for n in get_args(AlsSetting) if getattr(self, n) is not None)

    def als_source(self, tuned: str | None = None) -> str:
        """Where the model settings that apply come from, in a few words for a run's log and ``ops.model_runs``:
        the ones set (an environment variable or a DAG param), then the tuning run ``tuned`` (its version) or the
        mode's best known values for the rest."""
        configured = self.als_given()
        best = f"tuned {tuned}" if tuned else f"the {self.als_mode} mode's best known"
        if not configured:
            return f"{best} settings"
        rest = f"; {best} for the rest" if len(configured) < len(get_args(AlsSetting)) else ""
        return f"set: {', '.join(configured)}{rest}"

    @property
    def tuning(self) -> bool:
        """Whether the settings' budget tunes at all (``evaluation.Budget.of(settings).on`` says the same)."""
        return self.tune_trials > 0 and self.tune_seconds > 0

    @property
    def checkpoint_dir(self) -> str:
        return f"{self.lake}/_checkpoints"

    def jar_paths(self) -> list[str]:
        """The Delta jars resolved by ``make jars`` (empty when they are missing)."""
        folder = Path(self.jars_dir)
        return sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored), validated like the rest."""
        return from_mapping({**self.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})


# Variables read outside the settings model: logins and secrets (never in a settings dump), and the ones Setlist
# sets for the processes it starts. The configuration reference lists them with the settings.
OTHER_VARIABLES: dict[str, str] = {
    "SETLIST_AIRFLOW_PASSWORD": "The `admin` login of `setlist airflow`; unset: generated on the first start, stored "
    "in `~/.config/setlist/` (mode 600) and shown once.",
    "SETLIST_EXPLORER_PASSWORD": "The login of `setlist explorer`; unset: generated once, as above.",
    "SETLIST_SQL_PASSWORD": "The password of `setlist sql-server`'s JDBC/ODBC login; unset: generated once, as above.",
    "SETLIST_SQL_USER": "The user name of `setlist sql-server`'s login (default `setlist`).",
    "SETLIST_SPARK_CLUSTER_SECRET": "The `spark.authenticate.secret` the warm Spark presents to its `spark://` "
    "master; unset: none, except to a cluster `setlist spark-cluster` runs on this machine (its stored secret).",
    "SETLIST_EVENTS": "Set by `setlist run` for its tasks and jobs: the file where their log records go as JSON "
    "lines (its progress display). Leave it unset.",
    "SETLIST_JOB_FORKS": "Set by whoever starts the warm Spark: the Unix socket of its job fork server. Leave it "
    "unset.",
    "SETLIST_GUARD_PARENT": "Set by a server command for its guard process (the pid it watches). Leave it unset.",
    "SETLIST_FAULT": "Crash tests only: `STEP:WHEN:TABLE` makes a job kill itself at that commit point. Leave it "
    "unset.",
    "SETLIST_FAULT_TRACE": "Crash tests only: a file where a job lists the commit points it passes. Leave it unset.",
}


def _choices(name: str) -> tuple[str, ...]:
    return tuple(get_args(Settings.model_fields[name].annotation))


def _bounds(name: str) -> tuple[float, float] | None:
    metadata = Settings.model_fields[name].metadata
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    return None if low is None or high is None else (cast(float, low), cast(float, high))


FIELDS = tuple(Settings.model_fields)
ENV_VARS = {name: f"SETLIST_{name.upper()}" for name in FIELDS}
# Allowed ranges and choices, from the model: checked there and offered as the DAG's JSON-schema params.
RANGES: dict[str, tuple[float, float]] = {n: b for n in FIELDS if (b := _bounds(n)) is not None}
ALS_MODES = _choices("als_mode")
SPARK_MODES = _choices("spark_mode")
MISSING_DAY_POLICIES = _choices("missing_day")
# Settings a run may override per job or per DAG trigger.
MODEL_SETTINGS = ("als_mode", "serve_model", "rank", "max_iter", "reg_param", "alpha", "top_k")


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def is_loopback_cluster(master: str) -> bool:
    """A ``spark://`` master on this machine's loopback (as ``setlist spark-cluster`` starts one)."""
    return master.startswith(("spark://127.0.0.1:", "spark://localhost:"))


def check_writable(lake: str) -> None:
    """A local lake must be a folder this process can write (created if missing): a job would fail there only
    after Airflow and Spark had started, and its retries could not change that. URIs are the storage's to check."""
    if "://" in lake:
        return
    try:
        Path(lake).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=lake):
            pass
    except OSError as exc:
        raise ConfigError(
            f"lake: cannot write to {lake} ({exc.strerror}); set SETLIST_LAKE or --lake to a folder you can write"
        ) from None


def check_range(field: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise ConfigError(f"{field}: must be between {_number(low)} and {_number(high)}, got {value!r}")


def _config_error(exc: ValidationError) -> ConfigError:
    """The first problem as one line naming the field and what it allows."""
    err = exc.errors()[0]
    field = ".".join(str(part) for part in err["loc"]) or "settings"
    value, kind = err.get("input"), err["type"]
    if kind == "extra_forbidden":
        return ConfigError(f"{field}: unknown setting; allowed settings are {', '.join(FIELDS)}")
    if kind in ("greater_than_equal", "less_than_equal") and field in RANGES:
        low, high = RANGES[field]
        declared = Settings.model_fields[field].annotation  # int or float (or None): show the value as read
        number = next((a for a in get_args(declared) if a is not type(None)), declared)
        shown = number(value) if callable(number) else value
        return ConfigError(f"{field}: must be between {_number(low)} and {_number(high)}, got {shown!r}")
    if kind == "literal_error":
        return ConfigError(f"{field}: must be one of {', '.join(_choices(field))}, got {value!r}")
    if kind.startswith("int_"):
        return ConfigError(f"{field}: must be an integer, got {value!r}")
    if kind.startswith("float_"):
        return ConfigError(f"{field}: must be a number, got {value!r}")
    if kind == "value_error":
        return ConfigError(f"{field}: {err['ctx']['error']}")
    return ConfigError(f"{field}: {err['msg']}, got {value!r}")


def from_mapping(values: Mapping[str, Any]) -> Settings:
    """Build settings from field names to raw values (no environment); unknown fields are an error."""
    try:
        return Settings.model_validate(dict(values))
    except ValidationError as exc:
        raise _config_error(exc) from None


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``SETLIST_*`` environment variables, then non-``None`` keyword overrides."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if env is None:  # pydantic-settings reads SETLIST_* from the process environment
        try:
            return Settings(**given)
        except ValidationError as exc:
            raise _config_error(exc) from None
    values: dict[str, Any] = {f: env[var] for f, var in ENV_VARS.items() if env.get(var, "") != ""}
    return from_mapping({**values, **given})
