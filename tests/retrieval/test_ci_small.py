"""CI's small version of the study: 10,000 candidates, one contender per framework.

The same command with every installed contender (drop --impl) is what the
study runs at full size; on a 2-core machine this subset takes well under
two minutes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from bench.store import ResultsStore

ROOT = Path(__file__).resolve().parents[2]
CI_IMPLS = ("numpy-blocked", "faiss-flat", "faiss-ivf", "jax", "jax-blocked", "torch-blocked",
            "keras-jax-jit", "keras-tf-xla", "keras-torch")
NEEDS = {"faiss": ("faiss-flat", "faiss-ivf"), "jax": ("jax", "jax-blocked", "keras-jax-jit"),
         "torch": ("torch-blocked", "keras-torch"), "tensorflow": ("keras-tf-xla",)}


def _installed() -> list[str]:
    missing = {name for mod, names in NEEDS.items() if importlib.util.find_spec(mod) is None
               for name in names}
    return [name for name in CI_IMPLS if name not in missing]


@pytest.mark.slow
def test_ci_study_10k(tmp_path: Path) -> None:
    impls = _installed()
    results = tmp_path / "retrieval"
    cmd = [sys.executable, "-m", "bench", "retrieval", "--candidates", "10000", "--dim", "32",
           "--k", "10,100", "--batch", "1,100", "--impl", ",".join(impls), "--repeats", "5",
           "--min-calls", "2", "--budget", "0.2", "--timeout", "300", "--results", str(results)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    records = list(ResultsStore(results).iter_dicts())
    assert {r["impl"] for r in records} == set(impls)
    for r in records:
        assert r["status"] == "ok", r["error"]
        recall = r["figures"]["recall"]
        if r["impl_info"]["exact"]:
            assert recall == 1.0, (r["impl"], r["spec"], r["figures"])
        else:
            assert 0.0 < recall <= 1.0
    assert (results / "retrieval.md").is_file()
