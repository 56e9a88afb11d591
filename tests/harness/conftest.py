"""Helpers for the harness tests: run the real CLI in a subprocess on fake impls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.harness.fake_impl"
DATASET = "tests.harness.fake_data:medium"


def bench_run(*args: str, results: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m bench run <args> --results <results>` from the checkout's root."""
    cmd = [sys.executable, "-m", "bench", "run", *args, "--results", str(results)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def fake_args(*impls: str, epochs: int = 3, extra: tuple[str, ...] = ()) -> list[str]:
    """Flags for a quick sweep of fake implementations (class names in fake_impl)."""
    return [
        "--impl", ",".join(f"{FAKE}:{name}" for name in impls),
        "--dataset", DATASET,
        "--depth", "1",
        "--epochs", str(epochs),
        "--batch-size", "500",
        "--validation-freq", "2",
        "--retrieve-seconds", "0.05",
        *extra,
    ]


def read_lines(results: Path) -> list[dict[str, Any]]:
    """Every record line as a dict (strict: a torn line fails the test)."""
    path = results / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"
