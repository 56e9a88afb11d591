"""What makes a run comparable: package versions, machine, GPU, git commit.

Never imports a framework: versions come from `importlib.metadata`, the GPU
from `nvidia-smi`, so the harness parent can call it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from bench.errors import UsageError

# Distributions whose versions every record carries (where installed).
PACKAGES: tuple[str, ...] = (
    "numpy",
    "keras",
    "keras-rs",
    "jax",
    "jaxlib",
    "jax-cuda12-plugin",
    "torch",
    "tensorflow",
    "faiss-cpu",
)
# Worker environment variables that change what a run computes or where.
WORKER_ENV_KEYS: tuple[str, ...] = (
    "KERAS_BACKEND",
    "CUDA_VISIBLE_DEVICES",
    "JAX_PLATFORMS",
    "XLA_FLAGS",
    "TF_XLA_FLAGS",
    "OMP_NUM_THREADS",
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of `names`, without importing them (missing ones omitted)."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.machine()


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    """stdout of `cmd`, or None when it is missing or fails (never raises)."""
    try:
        out = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=20, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def gpu_info() -> dict[str, Any]:
    """GPUs as nvidia-smi sees them: {"gpus": [...], "cuda_version": str | None}.

    Empty list when there is no nvidia-smi or it finds no device.
    """
    if shutil.which("nvidia-smi") is None:
        return {"gpus": [], "cuda_version": None}
    query = _run(
        [
            "nvidia-smi",
            "--query-gpu=name,driver_version,memory.total",
            "--format=csv,noheader,nounits",
        ]
    )
    gpus = []
    for line in (query or "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            mem = float(parts[2]) if parts[2].replace(".", "", 1).isdigit() else None
            gpus.append({"name": parts[0], "driver": parts[1], "memory_mb": mem})
    header = _run(["nvidia-smi"]) or ""
    match = re.search(r"CUDA Version:\s*([0-9.]+)", header)
    return {"gpus": gpus, "cuda_version": match.group(1) if match else None}


def has_gpu() -> bool:
    """Whether nvidia-smi reports at least one GPU."""
    return bool(gpu_info()["gpus"])


def git_info(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """{"commit": HEAD sha or None, "dirty": bool or None} of the checkout at `root`.

    Dirty counts modified tracked files and untracked, non-ignored files.
    """
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _run(["git", "status", "--porcelain"], cwd=root)
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: how busy the machine was (timing noise)."""
    return [round(x, 2) for x in psutil.getloadavg()]


def capture(worker_env: dict[str, str] | None = None) -> dict[str, Any]:
    """The environment block of a record (bench/record.py): machine, OS, packages, GPU."""
    env = worker_env if worker_env is not None else dict(os.environ)
    gpu = gpu_info()
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "packages": package_versions(),
        "cpu_model": cpu_model(),
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "hostname": socket.gethostname(),
        "gpus": gpu["gpus"],
        "cuda_version": gpu["cuda_version"],
        "worker_env": {k: env[k] for k in WORKER_ENV_KEYS if k in env},
    }


def machine_label(env: Mapping[str, Any]) -> tuple[str, str]:
    """(CPU model with logical cores, GPU names or "none") of a record's environment block.

    What the report groups runs by (bench/report/runs.py), besides device, data and spec.
    """
    cpu = str(env.get("cpu_model") or "unknown CPU")
    cores = env.get("cpu_count_logical")
    machine = f"{cpu} ({cores} logical cores)" if cores else cpu
    gpus = env.get("gpus") or []
    names = [str(g.get("name", "?")) if isinstance(g, Mapping) else str(g) for g in gpus]
    return machine, ", ".join(names) if names else "none"


def resolve_device(device: str) -> str:
    """auto -> gpu when nvidia-smi sees one, else cpu; gpu without one is a UsageError."""
    gpu = has_gpu()
    if device == "gpu" and not gpu:
        raise UsageError("--device gpu: no GPU found (nvidia-smi lists none); use --device cpu")
    if device == "auto":
        return "gpu" if gpu else "cpu"
    return device


def device_env(device: str) -> dict[str, str]:
    """Worker variables that pin every framework to `device` (cpu or gpu)."""
    if device == "cpu":
        # Hides GPUs from torch and TensorFlow; JAX would otherwise still try CUDA.
        return {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    # JAX errors out instead of silently falling back to the CPU.
    return {"JAX_PLATFORMS": "cuda"}
