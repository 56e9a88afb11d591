"""Environment capture, and the GPU paths exercised with a stand-in nvidia-smi."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bench import envinfo
from bench.envinfo import device_env, resolve_device
from bench.errors import UsageError

FAKE_SMI = """#!/bin/sh
if [ "$1" = "--query-gpu=name,driver_version,memory.total" ]; then
  echo "NVIDIA H200, 550.54.15, 143771"
else
  echo "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |"
fi
"""


@pytest.fixture
def fake_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_capture_names_the_machine_and_packages() -> None:
    env = envinfo.capture({"KERAS_BACKEND": "jax", "HOME": "/root"})
    assert env["packages"]["numpy"] and env["python"].count(".") == 2
    assert env["cpu_count_logical"] >= 1 and env["cpu_model"]
    assert env["worker_env"] == {"KERAS_BACKEND": "jax"}
    assert len(envinfo.load_average()) == 3


def test_git_info_of_this_checkout() -> None:
    info = envinfo.git_info()
    assert len(info["commit"]) == 40 and isinstance(info["dirty"], bool)
    assert envinfo.git_info(Path("/")) == {"commit": None, "dirty": None}


def test_gpu_name_driver_and_cuda_are_recorded(fake_gpu: None) -> None:
    info = envinfo.gpu_info()
    assert info == {
        "gpus": [{"name": "NVIDIA H200", "driver": "550.54.15", "memory_mb": 143771.0}],
        "cuda_version": "12.4",
    }
    assert resolve_device("auto") == "gpu" and resolve_device("gpu") == "gpu"
    assert device_env("gpu") == {"JAX_PLATFORMS": "cuda"}


def test_no_gpu_means_cpu_and_gpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envinfo, "has_gpu", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert device_env("cpu") == {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    with pytest.raises(UsageError, match="no GPU"):
        resolve_device("gpu")
