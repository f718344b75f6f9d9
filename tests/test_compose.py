"""docker-compose.yml is valid and has the shape production needs.

Checked with ``docker-compose config`` (validation needs no Docker engine), with the
credential variables unset and an empty env file, so the defaults alone must give a
complete configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import missing

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"

APP_SERVICES = ("api", "worker", "beat")
BACKING_SERVICES = ("postgres", "redis", "minio")
ALL_SERVICES = (*APP_SERVICES, *BACKING_SERVICES, "minio-init", "migrate")
NAMED_VOLUMES = ("postgres-data", "redis-data", "minio-data")

# Variables the compose file reads; unset so that their defaults are what is checked.
COMPOSE_VARIABLES = (
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "EXCHANGE_PUBLIC_URL",
    "EXCHANGE_WEBHOOK_ALLOW_HOSTS",
    "EXCHANGE_LOG_LEVEL",
    "EXCHANGE_IMAGE_TAG",
)


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    missing("docker-compose", "not on PATH, so docker-compose.yml cannot be validated; Debian's "
            "docker-compose package provides it")


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    """Run ``docker-compose ... config ARGS`` in a clean environment; return the result."""
    executable = _docker_compose()
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    empty_env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    empty_env_file.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in COMPOSE_VARIABLES and not k.startswith(("COMPOSE_", "DOCKER_", "PYTHON"))
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [executable, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )

    return executable, run


def _parse_yaml(text: str, executable: str) -> dict:
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        return yaml.safe_load(text)
    # No PyYAML here: docker-compose is itself a Python program that parses YAML, so its own
    # interpreter can turn the output into JSON.
    first = Path(executable).read_text(errors="replace").splitlines()[0]
    interpreter = first[2:].split()[0] if first.startswith("#!") else None
    if interpreter is None or not Path(interpreter).exists():
        pytest.fail("cannot parse docker-compose's output: no PyYAML and no interpreter found for docker-compose")
    converted = subprocess.run(
        [interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=text,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        timeout=30,
    )
    assert converted.returncode == 0, converted.stderr
    return json.loads(converted.stdout)


@pytest.fixture(scope="module")
def config(compose) -> dict:
    executable, run = compose
    result = run()
    assert result.returncode == 0, result.stderr
    # An unset variable without a default would silently become an empty credential.
    assert "variable is not set" not in result.stderr, result.stderr
    return _parse_yaml(result.stdout, executable)


def _test_command(healthcheck: dict) -> list[str]:
    test = healthcheck.get("test")
    return [test] if isinstance(test, str) else list(test or [])


def test_compose_file_is_valid(compose):
    _, run = compose
    result = run("-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


def test_services_exist(config):
    missing = sorted(set(ALL_SERVICES) - set(config["services"]))
    assert not missing, f"services missing from docker-compose.yml: {missing}"


@pytest.mark.parametrize("name", [*APP_SERVICES, *BACKING_SERVICES])
def test_long_running_services_have_healthchecks(config, name):
    healthcheck = config["services"][name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable"), f"{name} has its healthcheck disabled"
    test = _test_command(healthcheck)
    assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: unexpected healthcheck test {test}"


def test_api_is_ready_only_when_its_dependencies_are(config):
    api = config["services"]["api"]
    assert "/readyz" in " ".join(_test_command(api["healthcheck"]))
    assert api["command"] == ["exchange", "serve", "--host", "0.0.0.0", "--port", "8000"]
    port = api["ports"][0]
    published, target = port.split(":")[-2:] if isinstance(port, str) else (port["published"], port["target"])
    assert (str(published), str(target).split("/")[0]) == ("8000", "8000")
    conditions = {name: dep.get("condition") for name, dep in api["depends_on"].items()}
    assert conditions == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "minio-init": "service_completed_successfully",
        "migrate": "service_completed_successfully",
    }


def test_bucket_is_created_with_object_lock(config):
    init = config["services"]["minio-init"]
    script = " ".join([*(init.get("entrypoint") or []), *(init.get("command") or [])])
    assert "--with-lock" in script
    assert "mc mb" in script
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert str(init.get("restart", "no")) == "no"


def test_app_services_share_one_image_and_settings(config):
    services = config["services"]
    names = (*APP_SERVICES, "migrate")
    assert len({services[n]["image"] for n in names}) == 1
    assert services["migrate"]["command"] == ["exchange", "db", "upgrade"]
    assert services["worker"]["command"] == ["exchange", "worker"]
    assert services["beat"]["command"] == ["exchange", "beat"]
    for name in names:
        env = services[name]["environment"]
        assert env["EXCHANGE_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/exchange" in env["EXCHANGE_DATABASE_URL"]
        assert env["EXCHANGE_STORAGE_URL"].startswith("s3://")
        assert "@minio:9000/exchange?secure=false" in env["EXCHANGE_STORAGE_URL"]
        assert env["EXCHANGE_BROKER_URL"] == "redis://redis:6379/0"


def test_data_lives_in_named_volumes(config):
    declared = set(config.get("volumes") or {})
    assert set(NAMED_VOLUMES) <= declared, f"named volumes missing: {sorted(set(NAMED_VOLUMES) - declared)}"
    mounted = {}
    for name in BACKING_SERVICES:
        for volume in config["services"][name].get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            mounted.setdefault(name, set()).add(source)
    for name, volume in zip(BACKING_SERVICES, NAMED_VOLUMES):
        assert volume in mounted.get(name, set()), f"{name} does not keep its data in the named volume {volume}"
