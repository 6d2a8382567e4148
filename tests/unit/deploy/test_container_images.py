"""The Dockerfile and docker-compose.yaml, checked on paper (no Docker engine here): every service runs a
command its image has, sets only variables the code, Airflow or Spark reads, listens on loopback only and
takes its secrets from the environment; the image is built by the repository's own set-up."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.core.config import PROJECT_ROOT
from include.lake.spark import TOKEN_VAR
from include.orchestration.spark_cluster import SPARK_SECRET_ENV

pytestmark = pytest.mark.unit

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
OURS = {name: s for name, s in COMPOSE["services"].items() if s.get("image") == "setlist:latest"}
# what Spark reads from the environment: its bind address and daemon options, the cluster's secret, the token
SPARK_VARIABLES = {"SPARK_LOCAL_IP", "SPARK_DAEMON_JAVA_OPTS", SPARK_SECRET_ENV, TOKEN_VAR}
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"  # what `make setup` installs, as the image's build stage runs it


def runtime_stage() -> str:
    return DOCKERFILE.rsplit("\nFROM ", 1)[1]


def test_the_image_is_built_by_make_setup_and_runs_from_its_venv():
    build = DOCKERFILE.split("\nFROM ")[1]
    assert re.search(r"^RUN make setup\b", build, re.M), "the build stage must run the repo's own set-up"
    for needed in ("requirements.lock", "pyproject.toml", "Makefile", "jars", "include", "spark_jobs", "dags"):
        assert re.search(rf"^COPY .*\b{re.escape(needed)}\b", build, re.M), needed
    assert "openjdk-17-jdk-headless" in build and "maven" in build  # Maven resolves the jars, javac the login jar
    # `make setup` = the locked packages, the project, the Delta jars and the SQL login jar
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^setup: venv jars$", makefile, re.M)
    assert "pip install --quiet -r requirements.lock" in makefile and "dependency:copy-dependencies" in makefile
    runtime = runtime_stage()
    assert "openjdk-17-jre-headless" in runtime and "COPY --from=build /opt/setlist /opt/setlist" in runtime
    assert "PATH=/opt/setlist/.venv/bin:$PATH" in runtime and re.search(r"^USER setlist$", runtime, re.M)
    assert {s["build"] for s in OURS.values()} == {"."} and len(OURS) >= 7


def _command_exists(argv: list[str]) -> None:
    exe, *args = argv
    assert (VENV_BIN / exe).is_file(), f"{exe} is not in the image's venv"
    if exe == "airflow":
        from airflow.cli.cli_parser import get_parser

        get_parser().parse_args(args)  # exits on an unknown command
    elif exe == "setlist":
        from include.cli.main import cli

        command = cli.get_command(None, args[0])  # type: ignore[arg-type]
        assert command is not None, args[0]
        command.make_context(args[0], list(args[1:]))  # parses the options; unknown ones fail
    elif exe == "spark-class":
        import pyspark

        jars = Path(pyspark.__file__).parent / "jars"
        [core] = jars.glob("spark-core_*.jar")
        with zipfile.ZipFile(core) as jar:
            assert args[0].replace(".", "/") + ".class" in jar.namelist(), args[0]
    elif exe == "python":
        assert args[0] == "-m" and (PROJECT_ROOT / (args[1].replace(".", "/") + ".py")).is_file(), args
    else:
        raise AssertionError(f"no check for {exe}")


def test_every_service_runs_a_command_its_image_has():
    for name, service in OURS.items():
        assert isinstance(service["command"], list), name
        _command_exists(service["command"])


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def _variables_the_code_reads() -> set[str]:
    from include.core.config import ENV_VARS

    read = set(ENV_VARS.values())
    for path in [*PROJECT_ROOT.glob("include/**/*.py"), *PROJECT_ROOT.glob("spark_jobs/*.py")]:
        read |= set(re.findall(r'"(SETLIST_[A-Z_]+)"', path.read_text(encoding="utf-8")))
    return read


def test_every_variable_is_one_the_code_or_airflow_reads():
    from airflow.configuration import conf

    options = conf.configuration_description
    read = _variables_the_code_reads()
    env = {k: v for s in OURS.values() for k, v in _environment(s).items()}
    assert env
    for key in env:
        if key.startswith("AIRFLOW__"):
            section, option = key.removeprefix("AIRFLOW__").lower().split("__")
            assert option in options.get(section, {}).get("options", {}), key
        elif key.startswith("SETLIST_"):
            assert key in read, key
        else:  # an Airflow connection by its documented naming, or what Spark reads from the environment
            assert key.startswith("AIRFLOW_CONN_") or key in SPARK_VARIABLES, key


def test_every_service_listens_on_loopback_and_takes_its_secrets_from_the_environment():
    """The host's network, every server bound to 127.0.0.1 (nothing published, no other address)."""
    assert "0.0.0.0" not in (PROJECT_ROOT / "docker-compose.yaml").read_text(encoding="utf-8")
    for name, service in COMPOSE["services"].items():
        assert service.get("network_mode") == "host" and "ports" not in service, name
        argv = [str(a) for a in service.get("command", [])]
        hosts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--host"]
        hosts += [a.split("=", 1)[1] for a in argv if a.startswith("listen_addresses=")]
        hosts += [v for k, v in _environment(service).items() if k in ("AIRFLOW__API__HOST", "SPARK_LOCAL_IP")]
        assert all(h == "127.0.0.1" for h in hosts), (name, hosts)
        if name.startswith(("spark-master", "spark-worker", "airflow-apiserver", "postgres")):
            assert hosts, f"{name} must name its loopback address"
        for key, value in _environment(service).items():
            if re.search(r"PASSWORD|SECRET|SQL_ALCHEMY_CONN|DB_URL", key):
                assert "${" in value, f"{name}: {key} must come from .env"
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").split()
