"""keras-reference on small synthetic data: its contract checks per backend, and one real run.

The reference implementations start from Keras's own weights on their own split
(shared_start False), so the shared-start conformance checks (impl_checks.py) do
not apply to them (children.OWN_START); the checks that do are in
reference_checks.py, run here in a child per backend with the registry's env.
The pytest process imports no framework.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from bench.process import worker_env
from tests.impls.children import OWN_START

ROOT = Path(__file__).resolve().parents[2]
SMALL = "synthetic:users=40,movies=120,ratings=2000"


@pytest.mark.slow
@pytest.mark.parametrize("name", OWN_START)
def test_reference_contract_checks(name: str, tmp_path: Path) -> None:
    entry = registry.get(name)
    if not entry.installed():
        pytest.skip(f"{name} needs {', '.join(entry.missing())}")
    out = subprocess.run(
        [sys.executable, "-m", "tests.impls.reference_checks", str(tmp_path / "cache")],
        cwd=ROOT, env=worker_env(entry.env, {"DEEPREC_IMPL": name}), capture_output=True,
        text=True, timeout=300,
    )
    assert out.returncode == 0 and "reference checks ok" in out.stdout, out.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.skipif(not registry.get("keras-reference").installed(),
                    reason="needs keras, keras_rs, tensorflow and jax")
def test_a_keras_reference_run_records_its_own_pipeline(tmp_path: Path) -> None:
    cache, results = tmp_path / "cache", tmp_path / "runs"
    cmd = [sys.executable, "-m", "bench", "run", "--impl", "keras-reference", "--depth", "1",
           "--epochs", "2", "--dataset", SMALL, "--cache-dir", str(cache),
           "--retrieve-seconds", "0.05", "--results", str(results), "--no-progress"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads((results / "records.jsonl").read_text().splitlines()[-1])
    f, info = rec["figures"], rec["impl_info"]
    assert rec["status"] == "ok"
    assert f["prepare_s"] > 0 and info["shared_start"] is False
    for key in ("top100_accuracy_impl", "top100_accuracy_numpy"):
        assert 0.0 <= f[key] <= 1.0, (key, f[key])
    options = info["resolved_options"]
    assert options["nan_candidate_rows"] == 1 and options["split_seed"] == 42
    assert isinstance(options["topk_returns_nan_row"], bool)
    # Its raw records were made once, under the run's cache root (--cache-dir).
    assert len(list((cache / "reference-records").glob("synthetic-*.npz"))) == 1


@pytest.mark.parametrize("flag", ["--impl", "--reference"])
def test_parity_refuses_an_implementation_without_a_shared_start(flag: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "parity", flag, "keras-reference", "--dataset", SMALL],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0  # one line
    assert "keras-reference starts from its own initial weights" in out.stderr


@pytest.mark.skipif(not registry.get("keras-reference").installed(),
                    reason="needs keras, keras_rs, tensorflow and jax")
def test_run_refuses_a_factory_dataset_up_front(tmp_path: Path) -> None:
    """keras-reference reads a cached dataset's raw records; a module:function has none."""
    out = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--impl", "keras-reference", "--dataset",
         "tests.fixtures:make_dataset", "--results", str(tmp_path / "runs")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "factory" in out.stderr
    assert not (tmp_path / "runs").exists()
