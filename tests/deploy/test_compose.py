"""docker-compose.yml validates, and everything it names exists in the repository and the settings."""

import os
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


def readme_deployment_steps() -> list[str]:
    """The lines of the README's first Deployment code block, as a person would copy them."""
    section = (ROOT / "README.md").read_text().split("\n## Deployment\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()


def test_the_readme_compose_steps_work_as_written(tmp_path):
    """cp .env.example .env, set the two variables the README names, mkdir, then compose reads the file:
    with MINIO_ROOT_PASSWORD unset, since the Milvus profile is off by default."""
    steps = readme_deployment_steps()
    copy = next(line for line in steps if line.startswith("cp .env.example .env"))
    command, _, comment = copy.partition("#")
    told = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", comment)) & set(env_example())
    assert told == {"POSTGRES_PASSWORD", "REID_ADMIN_KEY"}, comment
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "REID_", "MINIO_"))}
    subprocess.run(command.strip(), shell=True, cwd=tmp_path, check=True, env=env)
    dotenv = (tmp_path / ".env").read_text()
    for name in told:
        dotenv = re.sub(rf"^{name}=$", f"{name}=chosen-{name.lower()}", dotenv, flags=re.MULTILINE)
    (tmp_path / ".env").write_text(dotenv)
    mkdir = next(line for line in steps if line.startswith("mkdir"))
    subprocess.run(mkdir.split("#")[0].strip(), shell=True, cwd=tmp_path, check=True, env=env)
    assert any(line.startswith("docker-compose up -d") for line in steps)
    assert re.search(r"^MINIO_ROOT_PASSWORD=$", dotenv, re.MULTILINE)

    result = subprocess.run(
        ["docker-compose", "config"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"postgres", "migrate", "api"} <= set(services)  # (docker-compose 1.x lists profiled ones too)
    assert services["api"]["environment"]["REID_ADMIN_KEY"] == "chosen-reid_admin_key"
    assert services["api"]["environment"]["REID_MILVUS_URI"] == "http://milvus:19530"

    milvus = subprocess.run(
        ["docker-compose", "--profile", "milvus", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert milvus.returncode == 0, milvus.stderr
    minio = yaml.safe_load(milvus.stdout)["services"]["minio"]
    assert "MINIO_ROOT_PASSWORD" in " ".join(minio["command"]), (
        "MinIO must refuse to start without a password"
    )


def test_the_images_install_the_milvus_client_but_never_milvus_lite():
    for dockerfile in (ROOT / "docker").glob("Dockerfile*"):
        installs = [line for line in dockerfile.read_text().splitlines() if "pip install" in line]
        assert any("'.[milvus]'" in line for line in installs), dockerfile.name
        assert not any("milvus-lite" in line or "milvus_lite" in line for line in installs), dockerfile.name
