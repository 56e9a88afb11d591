"""`python -m bench doctor`: the report from fake rows, one real child (torch), broken imports,
and the `gpu` extra that the doctor's advice names.

Only the torch test imports a framework, in the doctor's child; the broken
ones are stand-in `faiss` modules put first on the child's path.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench.cli import main
from bench.commands import doctor
from bench.doctor.probes import Row
from bench.doctor.runner import Report

ROOT = Path(__file__).resolve().parents[2]
NO_GPU = {"cpu_model": "Test CPU", "cpu_count": 2, "nvidia_smi": False, "gpus": [],
          "cuda_version": None}
H200 = {**NO_GPU, "nvidia_smi": True, "cuda_version": "12.4",
        "gpus": [{"name": "NVIDIA H200", "driver": "550.54.15", "memory_mb": 143771.0}]}
JAX_FIX = "pip install -e '.[gpu]' (brings jax[cuda12]==0.10.2)"


def _rows() -> list[Row]:
    return [
        Row("jax", "jax", version="0.10.2", build="CPU only (no jax-cuda plugin)",
            devices=["cpu:0 (cpu)"], gpu=False, gpu_detail="sees no GPU", fix=JAX_FIX),
        Row("torch", "torch", version="2.13.0", build="CUDA 12.8",
            devices=["cpu", "cuda:0 (NVIDIA H200)"], gpu=True, gpu_detail="cuda:0"),
        Row("tensorflow", "tensorflow", installed=False, fix="pip install -e '.[tf]'"),
        Row("faiss", "faiss-cpu", version="1.15.1", build="CPU only", devices=["cpu"],
            gpu_detail="n/a: the retrieval study runs faiss on the CPU"),
    ]


def test_the_text_report_names_devices_verdicts_and_what_to_install() -> None:
    text = doctor.format_text(Report(H200, _rows()))
    assert "GPU 0: NVIDIA H200, 143771 MiB, driver 550.54.15, CUDA 12.4 (nvidia-smi)" in text
    table = {line.split()[0]: line for line in text.splitlines() if line[:1].isalpha()}
    assert table["jax"].endswith(" no") and "cpu:0 (cpu)" in table["jax"]
    assert table["torch"].endswith("yes: cuda:0") and table["tensorflow"].endswith("not installed")
    assert table["faiss"].endswith("n/a: the retrieval study runs faiss on the CPU")
    assert f"  jax: {JAX_FIX}" in text and "  tensorflow: pip install -e '.[tf]'" in text
    assert "--device gpu would work here for: torch" in text and "refuses" not in text
    no_gpu = doctor.format_text(Report(NO_GPU, _rows()[:1]))
    assert "GPU: none (no nvidia-smi here)" in no_gpu and "for: none of them" in no_gpu
    assert "refuses --device gpu before any worker starts" in no_gpu


def _doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            rows: list[Row], *flags: str) -> tuple[int, str, list[str]]:
    """`bench doctor` in this process over fake rows: (exit code, stdout, stderr lines)."""
    monkeypatch.setattr(doctor, "inspect", lambda names, timeout, progress: Report(NO_GPU, rows))
    code = main(["doctor", "--no-progress", *flags])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def test_exit_1_and_one_error_line_per_framework_that_failed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    broken = [Row("torch", "torch", error="ImportError: libcudart.so.12: cannot open"),
              Row("keras (torch)", "torch", error="not inspected: its child exited 1: boom")]
    code, out, err = _doctor(monkeypatch, capsys, _rows()[:1] + broken, "--json")
    assert code == 1
    assert err == ["error: torch: ImportError: libcudart.so.12: cannot open",
                   "error: keras (torch): not inspected: its child exited 1: boom"]
    document = json.loads(out)
    assert [r["name"] for r in document["frameworks"]] == ["jax", "torch", "keras (torch)"]
    assert document["machine"] == NO_GPU and document["gpu_ready"] == []
    code, out, err = _doctor(monkeypatch, capsys, _rows())  # nothing failed: 0, stderr quiet
    assert code == 0 and err == [] and "error (see below)" not in out


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_real_child_inspects_torch_and_keras_on_it(capsys: pytest.CaptureFixture[str]) -> None:
    frameworks_before = {"torch", "keras"} & set(sys.modules)
    code = main(["doctor", "--framework", "torch", "--json", "--no-progress"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document
    assert {"torch", "keras"} & set(sys.modules) == frameworks_before  # only the child imports
    torch_row, *keras_rows = document["frameworks"]
    assert torch_row["version"] == importlib.metadata.version("torch")
    assert torch_row["devices"][0] == "cpu" and torch_row["error"] == ""
    if torch_row["gpu"] is False:  # this machine: no GPU; a CPU build must be told what to do
        assert torch_row["gpu_detail"] == "sees no GPU" and torch_row["fix"]
        if torch_row["build"] == "CPU only":
            assert ".[gpu]" in torch_row["fix"] and "uninstall torch" in torch_row["fix"]
    if importlib.util.find_spec("keras") is not None:
        (keras_row,) = keras_rows
        assert keras_row["name"] == "keras (torch)" and keras_row["gpu"] == torch_row["gpu"]
        assert keras_row["fix"] == torch_row["fix"] and keras_row["devices"]


BROKEN_FAISS = {
    "raises": ("raise ImportError('faiss is broken here')", "ImportError: faiss is broken here"),
    "dies": ("import os; os._exit(3)", "not inspected: its child exited 3"),
}


@pytest.mark.parametrize("how", sorted(BROKEN_FAISS))
def test_a_framework_that_fails_to_import_is_one_line_and_exit_1(how: str, tmp_path: Path) -> None:
    source, expected = BROKEN_FAISS[how]
    (tmp_path / "faiss.py").write_text(source + "\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "bench", "doctor", "--framework", "faiss",
                          "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: faiss: {expected}") and "Traceback" not in out.stdout
    assert "faiss" in out.stdout and "error (see below)" in out.stdout


def test_the_gpu_extra_pins_the_cuda_builds_and_stays_out_of_all() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    jax = importlib.metadata.version("jax") if importlib.util.find_spec("jax") else None
    assert extras["gpu"][0].startswith("jax[cuda12]==")
    if jax is not None:
        assert extras["gpu"][0] == f"jax[cuda12]=={jax}", "re-pin the gpu extra to jax " + jax
    assert any(r.startswith("tensorflow[and-cuda]") for r in extras["gpu"])
    assert any(r.startswith("torch") for r in extras["gpu"])
    # What CI installs (.ci/run: .[all,dev]) never reaches a CUDA build.
    assert '".[all,dev]"' in (ROOT / ".ci" / "run").read_text()
    reached = {"all", "dev"}
    while True:
        more = {name for extra in reached for req in extras[extra] if "deeprec-bench[" in req
                for name in req.split("[")[1].rstrip("]").split(",")}
        if more <= reached:
            break
        reached |= more
    assert "gpu" not in reached
    assert not [r for extra in reached for r in extras[extra] if "cuda" in r]
