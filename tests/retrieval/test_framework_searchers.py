"""Framework searchers in subprocesses: blocked == unblocked == exact answer."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize(("module", "target"), [
    ("jax", "bench.retrieval.backends.jax_search:JaxSearcher"),
    ("torch", "bench.retrieval.backends.torch_search:TorchSearcher"),
])
def test_blocked_equals_unblocked(module: str, target: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed")
    proc = subprocess.run([sys.executable, "-m", "tests.retrieval.blocked_check", target],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr[-2000:]
