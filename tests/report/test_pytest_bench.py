"""pytest-benchmark JSON: stats as pytest-benchmark computes them, export, compare, import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import UsageError
from bench.report import pytest_bench
from tests.report.records import study, write_study


@pytest.mark.parametrize("data", [[0.5], [3.0, 1.0], [1.0, 5.0, 2.0, 2.5, 9.0],
                                  [0.1 * i * i for i in range(1, 12)],
                                  [1.0, 1.1, 0.9, 1.05, 4.0, 1.0, 0.95]])
def test_stats_equal_pytest_benchmark_own(data: list[float]) -> None:
    pb = pytest.importorskip("pytest_benchmark.stats")
    ref = pb.Stats()
    for x in data:
        ref.update(x)
    ours = pytest_bench.bench_stats(data)
    for name, want in ref.as_dict().items():
        assert ours[name] == pytest.approx(want) if isinstance(want, float) else ours[name] == want
    assert ours["data"] == data


def _export(tmp_path: Path) -> tuple[Path, Path]:
    results = write_study(tmp_path / "results",
                          study({"keras-jax": [0.3, 0.31], "jax": [0.3, 0.31]}))
    exported = tmp_path / "bench.json"
    assert main(["report", "--results", str(results),
                 "--export-pytest-benchmark", str(exported), "--no-plots"]) == 0
    return results, exported


def test_export_writes_one_benchmark_per_run_and_phase(tmp_path: Path) -> None:
    _, exported = _export(tmp_path)
    doc = json.loads(exported.read_text())
    names = sorted(b["name"] for b in doc["benchmarks"])
    assert len(names) == 8  # 4 runs x (train_epoch, first_epoch)
    assert "train_epoch[jax-32-seed1-r0]" in names
    epoch = next(b for b in doc["benchmarks"] if b["name"] == "train_epoch[jax-32-seed1-r0]")
    assert epoch["stats"]["rounds"] == 9  # the 9 steady epochs of a 10-epoch run
    assert epoch["extra_info"]["machine"] == "Test CPU 9000 (2 logical cores)"
    assert doc["datetime"] == "2026-11-29T10:01:00+00:00"  # from the records, not the clock


def test_export_loads_with_pytest_benchmark_compare(tmp_path: Path) -> None:
    pytest.importorskip("pytest_benchmark")
    _, exported = _export(tmp_path)
    exe = shutil.which("pytest-benchmark", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("pytest-benchmark command not installed")
    proc = subprocess.run([exe, "compare", str(exported), "--columns", "min,median,rounds"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "train_epoch[keras-jax-32-seed0-r0]" in proc.stdout
    assert "Failed to load" not in proc.stdout + proc.stderr


def test_report_imports_pytest_benchmark_json_round_trip(tmp_path: Path) -> None:
    results, exported = _export(tmp_path)
    assert main(["report", "--results", str(results), "--no-plots", "--pytest-benchmark",
                 str(exported)]) == 0
    text = (results / "README.md").read_text()
    assert "## pytest-benchmark" in text
    assert "| bench.json | train_epoch[jax-32-seed0-r0] | 9 |" in text
    rows = (results / "pytest_benchmark.csv").read_text().splitlines()
    assert len(rows) == 1 + 8


def test_import_rejects_files_that_are_not_pytest_benchmark(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"benchmarks": [{"name": "x"}]}))
    with pytest.raises(UsageError, match="not a pytest-benchmark JSON file"):
        pytest_bench.load(bad)
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        pytest_bench.load(bad)


def test_report_reads_a_file_pytest_benchmark_itself_wrote(tmp_path: Path) -> None:
    pytest.importorskip("pytest_benchmark")
    (tmp_path / "test_tiny.py").write_text(
        "def test_sum(benchmark):\n    benchmark(sum, range(100))\n")
    saved = tmp_path / "saved.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_tiny.py", "-q",
                           "-p", "no:cacheprovider", "--benchmark-only",
                           "--benchmark-max-time=0.01", f"--benchmark-json={saved}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = write_study(tmp_path / "results", study({"keras-jax": [0.3]}))
    assert main(["report", "--results", str(results), "--no-plots",
                 "--pytest-benchmark", str(saved)]) == 0
    text = (results / "README.md").read_text()
    assert "| saved.json | test_sum |" in text
    assert "- saved.json: machine " in text
