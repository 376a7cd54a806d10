"""One FAISS: the install resolves faiss-gpu alone, and Milvus Lite never brings faiss-cpu in.

faiss-gpu and faiss-cpu both install the package ``faiss``; whichever is installed last owns its
files, so an environment holding both can silently lose GPU FAISS. Milvus Lite depends on faiss-cpu;
it is therefore not a dependency of any extra (``make setup`` installs it with --no-deps for the tests).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_no_extra_and_no_default_dependency_names_milvus_lite_or_faiss_cpu():
    default = {name_of(r) for r in PROJECT["dependencies"]}
    assert {n for n in default if n.startswith("faiss")} == {"faiss-gpu"}
    assert not default & {"pymilvus", "milvus-lite"}
    for extra, requirements in PROJECT["optional-dependencies"].items():
        assert not {name_of(r) for r in requirements} & {"milvus-lite", "faiss-cpu"}, extra
    assert {name_of(r) for r in PROJECT["optional-dependencies"]["milvus"]} == {"pymilvus"}


def test_a_dry_run_of_the_dev_install_resolves_exactly_one_faiss(tmp_path):
    """``pip install -e '.[dev]'`` (CI's and make setup's install, a superset of the default one)."""
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    done = subprocess.run(
        [*command, "--report", str(report), "-e", ".[dev]"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {n for n in names if "faiss" in n} == {"faiss-gpu"}
    assert "milvus-lite" not in names and "pymilvus" in names


def test_this_environment_holds_one_faiss_distribution():
    installed = {d.metadata["Name"].lower() for d in distributions()}
    assert {n for n in installed if "faiss" in n} == {"faiss-gpu"}


def test_make_setup_installs_milvus_lite_without_its_dependencies():
    makefile = (ROOT / "Makefile").read_text()
    lines = [line for line in makefile.splitlines() if "milvus-lite" in line and "pip install" in line]
    assert lines and all("--no-deps" in line for line in lines)
