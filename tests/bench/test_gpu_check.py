"""bench/gpu_check.py on the CPU (its tiny profile): every step runs and reports what a user checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"
STEPS = ["training", "resume", "ddp", "embedding", "faiss_cpu", "faiss_gpu", "service"]

pytestmark = pytest.mark.slow  # one run of the whole check: two to three minutes on two cores


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny run as a user starts it, with a generous time budget so a busy machine skips nothing."""
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    command = [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--budget", "400", "--out", str(out)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=480, env=env)
    assert out.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    return {"report": json.loads(out.read_text()), "returncode": result.returncode, "stdout": result.stdout}


@pytest.fixture(scope="module")
def steps(run: dict[str, Any]) -> dict[str, Any]:
    return run["report"]["steps"]


def test_every_step_reports_ok_failed_or_skipped_and_the_exit_code_follows(run, steps) -> None:
    report = run["report"]
    assert report["profile"] == "tiny" and report["machine"]["device"] == "cpu"
    assert list(steps) == STEPS
    for name, entry in steps.items():
        assert entry["status"] in {"ok", "failed", "skipped"}, name
        assert entry["reason" if entry["status"] == "skipped" else "seconds"], name
        if entry["status"] == "failed":
            assert entry["error"], name
    failed = {name: entry.get("error") for name, entry in steps.items() if entry["status"] == "failed"}
    assert failed == {}, failed
    assert run["returncode"] == report["exit_code"] == 0


def test_the_table_names_every_step(run) -> None:
    table = run["stdout"].split("step       status")[-1]
    for name in STEPS:
        assert f"\n{name} " in table
    assert "wrote" in run["stdout"]


def test_training_loss_falls_and_both_forms_start_from_the_same_loss(steps) -> None:
    training = steps["training"]
    factored, naive = training["forms"]["factored"], training["forms"]["naive"]
    assert factored["loss_last"] < factored["loss_first"] and factored["steps"] >= 6
    assert factored["images_per_s"] > 0 and naive["images_per_s"] > 0
    assert training["first_step_loss_rel_diff"] < 1e-4, "same weights, same batch, float32 on the CPU"
    assert training["forms_fp32_rel_diff"] < 1e-4 and training["checks"]["forms_agree_in_fp32"]
    assert factored["peak_cuda_mib"] is None and training["mixed_precision"] is None


def test_a_resumed_run_is_bit_exact(steps) -> None:
    resume = steps["resume"]
    assert resume["bit_exact"] and resume["max_weight_abs_diff"] == 0.0
    assert resume["losses_resumed"] == resume["losses_uninterrupted"] and resume["losses_resumed"]


def test_ddp_ran_two_gloo_processes(steps) -> None:
    ddp = steps["ddp"]
    assert ddp["backend"] == "gloo" and ddp["world_size"] == 2 and ddp["nccl_refused"] is None
    assert [e["epoch"] for e in ddp["epochs"]] == [1, 2]


def test_exported_runtimes_agree_with_eager_float32(steps) -> None:
    rows = {(r["runtime"], r["precision"]): r for r in steps["embedding"]["rows"]}
    assert set(rows) == {("eager", "fp32"), ("torchscript", "fp32"), ("onnxruntime", "fp32")}
    for row in rows.values():
        assert row["cosine_min"] > 0.9999, row
        assert set(row["images_per_s"]) == {"1", "8", "32"} and min(row["images_per_s"].values()) > 0
    assert steps["embedding"]["auto"] == {"runtime": "onnx", "device": "cpu"}


def test_faiss_cpu_search_is_exact_and_the_gpu_index_is_skipped_with_a_reason(steps) -> None:
    cpu, gpu = steps["faiss_cpu"], steps["faiss_gpu"]
    if cpu["status"] == "skipped":
        assert "faiss" in cpu["reason"] and gpu["status"] == "skipped"
        return
    assert cpu["recall_at_10_vs_numpy"] == 1.0 and cpu["vectors"] >= 1000 and cpu["dim"] == 2048
    assert cpu["single_query_ms"] > 0 and cpu["batched_ms_per_query"] > 0
    assert gpu["status"] == "skipped" and "CUDA" in gpu["reason"]


def test_the_service_ingests_without_errors_beside_the_model_throughput(steps) -> None:
    service = steps["service"]
    if service["status"] == "skipped":
        assert "missing" in service["reason"]
        return
    assert service["failures"] == 0 and service["requests"] > 0 and service["service_device"] == "cpu"
    ingest, model = service["sightings_per_s"], service["model_batch32_images_per_s"]
    assert ingest > 0 and model > 0 and service["ratio"] == pytest.approx(ingest / model)
