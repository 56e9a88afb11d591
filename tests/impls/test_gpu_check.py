"""`--device gpu` on a machine whose GPU the frameworks cannot use: every primary fails at once.

The case of the first user with a GPU who installed only `.[all]`: nvidia-smi
lists a GPU (a stand-in here), so `bench run` sends each worker to the GPU
(JAX_PLATFORMS=cuda), and each framework's CPU build finds none. Each worker
must fail in its build phase, before any training, its record's error ending
in the one line that names the extra, and the console showing that line, not
a traceback. Then `--device auto` without nvidia-smi: the record says cpu.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from tests.harness.conftest import read_lines
from tests.harness.test_envinfo import FAKE_SMI
from tests.harness.test_real_impls import SYNTHETIC

ROOT = Path(__file__).resolve().parents[2]


def _installed(names: tuple[str, ...]) -> bool:
    return all(registry.get(n).installed() for n in names)


def _bench_run(tmp_path: Path, path: str, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bench", "run", "--depth", "1", "--epochs", "1",
           "--dataset", SYNTHETIC, "--cache-dir", str(tmp_path / "cache"),
           "--retrieve-seconds", "0.05", "--no-progress", "--results", str(tmp_path / "runs"),
           *flags]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PATH": path}, capture_output=True,
                          text=True, timeout=400)


@pytest.mark.slow
@pytest.mark.skipif(not _installed(registry.PRIMARY), reason="needs every framework")
def test_gpu_runs_fail_at_once_naming_the_gpu_extra(tmp_path: Path) -> None:
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    out = _bench_run(tmp_path, f"{smi.parent}{os.pathsep}{os.environ['PATH']}",
                     "--impl", "all", "--device", "gpu")
    console = out.stdout + out.stderr
    assert out.returncode == 1, console[-3000:]
    assert "Traceback" not in console
    records = read_lines(tmp_path / "runs")
    assert [r["impl"] for r in records] == list(registry.PRIMARY)
    for rec in records:
        last = rec["error"].strip().splitlines()[-1]
        assert rec["status"] == "failed" and rec["spec"]["device"] == "gpu", last
        assert last.startswith("impls._shared.NoGpuError: device 'gpu' requested but "), last
        assert "pip install -e '.[gpu]'" in last and "sees no GPU here" in last
        assert "import_s" in rec["figures"] and "build_s" not in rec["figures"]  # no training
        assert f"{rec['impl']} seed 0: failed: {last}" in console


@pytest.mark.slow
@pytest.mark.skipif(not _installed(("torch",)), reason="needs torch")
def test_auto_without_a_gpu_records_the_cpu(tmp_path: Path) -> None:
    bare = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if not (Path(p) / "nvidia-smi").exists())
    out = _bench_run(tmp_path, bare, "--impl", "torch", "--device", "auto")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    (rec,) = read_lines(tmp_path / "runs")
    assert rec["spec"]["device"] == "cpu" and rec["impl_info"]["device_name"] == "cpu"
