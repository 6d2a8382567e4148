"""The settings object: environment and overrides, ranges, errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from include.core.config import ALS_DEFAULTS, ConfigError, load_settings, parse_run_date

pytestmark = pytest.mark.unit


def test_env_and_overrides_build_one_frozen_object(tmp_path):
    s = load_settings(env={"SETLIST_RANK": "8", "SETLIST_LAKE": str(tmp_path)}, top_k="5")
    assert (s.rank, s.top_k, s.lake) == (8, 5, str(tmp_path))
    with pytest.raises(ValidationError, match="frozen"):
        s.rank = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"als_mode": "sgd"}, "als_mode", "explicit, implicit"),
        ({"serve_model": "best"}, "serve_model", "auto, explicit, implicit"),
        ({"rank": "0"}, "rank", "between 1 and 500"),
        ({"rank": "ten"}, "rank", "an integer"),
        ({"reg_param": "-1"}, "reg_param", "between 0 and 100"),
        ({"top_k": "5000"}, "top_k", "between 1 and 1000"),
        ({"vacuum_retention_hours": "24"}, "vacuum_retention_hours", "between 168 and 87600"),
        ({"als_biases": "maybe"}, "als_biases", "true, 1, yes, false, 0, no"),
        ({"promotion_tolerance": "1.5"}, "promotion_tolerance", "between 0 and 1"),
        ({"tune_seconds": "-5"}, "tune_seconds", "between 0 and 86400"),
        ({"tune_trials": "many"}, "tune_trials", "an integer"),
        ({"seed": "-1"}, "seed", "between 0 and 2147483647"),
        ({"landing_marker": "done/flag"}, "landing_marker", "a file name that is not a .csv file"),
        ({"landing_wait_minutes": "-1"}, "landing_wait_minutes", "between 0 and 10080"),
    ],
)
def test_invalid_settings_name_the_field_and_allowed_values(overrides, field, allowed):
    with pytest.raises(ConfigError) as err:
        load_settings(env={}, **overrides)
    assert str(err.value).startswith(f"{field}:")
    assert allowed in str(err.value)


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match=r"^colour: unknown setting"):
        load_settings(env={}, colour="blue")


def test_run_date_must_be_iso():
    assert parse_run_date("2026-11-20").isoformat() == "2026-11-20"
    with pytest.raises(ConfigError, match="--run-date: expected a date as YYYY-MM-DD"):
        parse_run_date("20/11/2026", "--run-date")


def test_uri_lakes_are_kept_as_uris():
    assert load_settings(env={}, lake="s3a://bucket/setlist/").lake == "s3a://bucket/setlist"
    with pytest.raises(ConfigError, match=r"^lake: must be a path or a URI"):
        load_settings(env={}, lake="  ")


def test_a_lake_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "lake.csv").write_text("not a lake\n")
    with pytest.raises(ConfigError, match=r"^lake: must be a folder or a URI .* got the file '.*lake\.csv'"):
        load_settings(env={}, lake=str(tmp_path / "lake.csv"))


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("SETLIST_RANK", "7")
    monkeypatch.setenv("SETLIST_EVENTS", "/tmp/events")  # other SETLIST_ variables are not settings
    assert load_settings(top_k=3).rank == 7
    monkeypatch.setenv("SETLIST_RANK", "0")
    with pytest.raises(ConfigError, match=r"^rank: must be between 1 and 500"):
        load_settings()


def test_biases_setting_accepts_true_and_false_words():
    assert load_settings(env={"SETLIST_ALS_BIASES": "no"}).als_biases is False
    assert load_settings(env={}, als_biases="TRUE").als_biases is True


def test_the_airflow_database_url_is_a_secret_checked_by_scheme_only():
    url = "postgresql+psycopg2://airflow:s3cret-pw@127.0.0.1:5432/airflow"
    settings = load_settings(env={"SETLIST_AIRFLOW_DB_URL": url})
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings.model_dump())
    assert settings.with_overrides(rank=5).airflow_db_url.get_secret_value() == url
    with pytest.raises(ConfigError) as refused:
        load_settings(env={"SETLIST_AIRFLOW_DB_URL": "mysql://airflow:s3cret-pw@db/airflow"})
    assert str(refused.value) == (
        "airflow_db_url: must be a URL starting with one of postgresql://, postgresql+psycopg2://, sqlite://;"
        " got scheme 'mysql'"
    )


def test_unset_model_settings_are_the_modes_best_known_values():
    implicit, explicit = load_settings(env={}), load_settings(env={}, als_mode="explicit")
    assert implicit.rank is None and implicit.als_value("rank") == ALS_DEFAULTS["implicit"]["rank"]
    assert explicit.als_value("reg_param") == ALS_DEFAULTS["explicit"]["reg_param"]
    assert ALS_DEFAULTS["explicit"]["reg_param"] != ALS_DEFAULTS["implicit"]["reg_param"]
    # A value set once stays set whatever the mode; an unset one follows the mode it ends up with.
    assert implicit.with_overrides(als_mode="explicit").als_value("rank") == ALS_DEFAULTS["explicit"]["rank"]
    assert load_settings(env={"SETLIST_RANK": "12"}, als_mode="explicit").als_value("rank") == 12
    assert implicit.tuning and not load_settings(env={"SETLIST_TUNE_SECONDS": "0"}).tuning
    assert not load_settings(env={}, tune_trials="0").tuning


def test_every_variable_the_code_reads_is_declared_once_and_described():
    """The configuration reference is generated from these declarations, so a variable the code reads and the
    reference does not list (or one it lists that nothing reads) fails here."""
    import re

    from include.core.config import ENV_VARS, OTHER_VARIABLES, PROJECT_ROOT, Settings

    found: set[str] = set()
    for folder in ("include", "spark_jobs", "dags"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r'"(SETLIST_[A-Z][A-Z_]+)"', path.read_text(encoding="utf-8")))
    assert found - set(ENV_VARS.values()) == set(OTHER_VARIABLES)
    assert not set(OTHER_VARIABLES) & set(ENV_VARS.values())
    assert all(field.description for field in Settings.model_fields.values())
