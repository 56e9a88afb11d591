"""A small synthetic study through the real CLI: `bench run` (numpy fakes) then `bench report`."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

FAKE = "tests.harness.fake_impl:FakeImpl"
TWIN = "tests.report.fake_twin:FakeTwin"
ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_run_then_report_end_to_end(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = _bench("run", "--impl", f"{FAKE},{TWIN}", "--depth", "1", "--epochs", "3",
                 "--seed", "0,1", "--validation-freq", "1", "--dataset",
                 "tests.fixtures:make_dataset", "--results", str(results), "--no-progress",
                 "--retrieve-seconds", "0.1")
    assert run.returncode == 0, run.stderr
    report = _bench("report", "--results", str(results), "--baseline", FAKE, "--check")
    assert report.returncode == 0, report.stderr
    assert f"{TWIN} vs {FAKE}: equivalent" in report.stdout  # same numerics, same seeds
    text = (results / "README.md").read_text()
    assert "in 1 comparable group(s)" in text and "content hash `tiny-2000-500-0`" in text
    rows = list(csv.DictReader(io.StringIO((results / "training.csv").read_text())))
    assert sorted(r["impl"] for r in rows) == sorted([FAKE, TWIN])
    assert all(r["seeds"] == "2" and float(r["train_epoch_s_median"]) > 0 for r in rows)
    assert len(list((results / "plots").glob("*.png"))) == 4
    first = {p.name: p.read_bytes() for p in results.iterdir() if p.suffix in (".md", ".csv")}
    assert _bench("report", "--results", str(results), "--baseline", FAKE).returncode == 0
    assert first == {p.name: p.read_bytes() for p in results.iterdir()
                     if p.suffix in (".md", ".csv")}
