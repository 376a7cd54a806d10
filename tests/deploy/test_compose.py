"""docker-compose.yml validates, and everything it names exists in the repository and the settings."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROJECT_SCRIPTS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
SECRETS = {
    "POSTGRES_PASSWORD": "not-a-real-password",
    "REID_ADMIN_KEY": "not-a-real-admin-key",
    "MINIO_ROOT_PASSWORD": "not-a-real-minio-password",
}


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """The compose file as `docker-compose config` resolves it, with .env made from .env.example."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (Debian package docker-compose; .ci/run installs it)")
    workdir = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", workdir / "docker-compose.yml")
    values = {**env_example(), **SECRETS}
    (workdir / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    result = subprocess.run(
        ["docker-compose", "--profile", "gpu", "--profile", "train", "--profile", "milvus", "config"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_with_every_profile(resolved):
    assert {"postgres", "migrate", "api", "api-gpu", "train", "milvus", "etcd", "minio"} <= set(
        resolved["services"]
    )


def test_compose_refuses_to_start_without_secrets(tmp_path):
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("".join(f"{k}=\n" for k in env_example()))
    result = subprocess.run(["docker-compose", "config"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "REID_ADMIN_KEY" in result.stderr


def test_api_waits_for_healthy_postgres_and_finished_migration(resolved):
    depends = resolved["services"]["api"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in resolved["services"]["postgres"]


def test_gpu_services_reserve_a_gpu(resolved):
    for name in ("api-gpu", "train"):
        devices = resolved["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]


def test_every_command_is_a_project_script_with_existing_files(resolved):
    for name, service in resolved["services"].items():
        command = service.get("command")
        if not service["image"].startswith("rga-reid:"):
            continue
        assert command, f"{name}: no command"
        assert command[0] in PROJECT_SCRIPTS, f"{name}: {command[0]} is not a console script"
        for argument in command:
            if argument.endswith((".yaml", ".yml")):
                assert (ROOT / argument).is_file(), f"{name}: {argument} does not exist"


def test_every_dockerfile_and_what_it_copies_exists(resolved):
    for service in resolved["services"].values():
        build = service.get("build")
        if not build:
            continue
        dockerfile = ROOT / build["dockerfile"]
        assert dockerfile.is_file()
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} is missing"


def test_every_reid_variable_is_a_setting():
    fields = {f"REID_{name.upper()}" for name in Settings.model_fields}
    compose_names = set(re.findall(r"\bREID_[A-Z_]+", (ROOT / "docker-compose.yml").read_text()))
    dockerfile_names = set()
    for dockerfile in (ROOT / "docker").glob("Dockerfile*"):
        dockerfile_names |= set(re.findall(r"\bREID_[A-Z_]+", dockerfile.read_text()))
    example_names = {k for k in env_example() if k.startswith("REID_")}
    assert compose_names | dockerfile_names | example_names <= fields


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        variable = f"REID_{name.upper()}"
        assert re.search(rf"^#.*\n{variable}=", text, re.MULTILINE) or re.search(
            rf"#[^\n]*\n(#[^\n]*\n)*{variable}=", text
        ), f"{variable} is missing from .env.example or has no comment"


def test_named_volumes_are_declared(resolved):
    declared = set(resolved.get("volumes", {}))
    for service in resolved["services"].values():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            kind = volume.get("type") if isinstance(volume, dict) else None
            if kind == "volume" or not str(source).startswith(("/", ".")):
                assert source in declared
