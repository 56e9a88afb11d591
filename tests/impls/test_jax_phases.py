"""bench.studies.jax_phases runs end to end on the tiny dataset and writes its report.

In a child process: this one never imports a framework. One round, depth 1;
the figures are only checked for being there and positive (no timing asserts).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from tests.impls.children import ROOT


def test_phases_report(tmp_path: Path) -> None:
    if not registry.get("keras-jax").installed():
        pytest.skip("needs jax, keras and keras_rs")
    out = tmp_path / "phases.md"
    cmd = [sys.executable, "-m", "bench.studies.jax_phases", "--data", "tiny", "--depth", "1",
           "--rounds", "1", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert "python -m bench.studies.jax_phases --data tiny --depth 1 --rounds 1" in text
    rows = dict(re.findall(r"^\| ([^|]+) \| ([0-9.]+) \|$", text, flags=re.M))
    assert len(rows) == 7  # six phases and keras-jax
    assert all(float(ms) > 0 for ms in rows.values())
    assert re.search(r"keras-jax / floor: \*\*[0-9.]+x\*\*", text)
