"""`python -m bench parity` end to end on the numpy fake implementations (tiny data)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.errors import EXIT_USAGE
from bench.parity.compare import DIFFERENT, EQUIVALENT, compare, weight_mismatch
from bench.report import shared_start

FAKE = "tests.harness.fake_impl:FakeImpl"
SAME = "tests.harness.parity_impls:SameImpl"
SKEWED = "tests.harness.parity_impls:SkewedImpl"
BROKEN = "tests.harness.parity_impls:BrokenImpl"
DATA = "tests.harness.fake_data:medium"  # 2000 train rows: 10 batches of 200


def _parity(results: Path, impls: str, *extra: str) -> int:
    return main(["parity", "--impl", impls, "--reference", FAKE, "--dataset", DATA,
                 "--batch-size", "200", "--steps", "6", "--results", str(results), *extra])


def test_verdicts_stored_in_the_report_format(tmp_path: Path) -> None:
    assert _parity(tmp_path, f"{SAME},{SKEWED}") == 0
    doc = json.loads((tmp_path / shared_start.FILE_NAME).read_text())
    assert doc["steps"] == 6 and doc["layer_sizes"] == [32]
    loaded = shared_start.load(tmp_path)
    by_impl = {p.impl: p for p in loaded.pairs}
    assert set(by_impl) == {SAME, SKEWED} and {p.baseline for p in loaded.pairs} == {FAKE}
    same, skewed = by_impl[SAME], by_impl[SKEWED]
    assert same.verdict == EQUIVALENT and same.max_abs_loss_diff == 0.0
    assert same.first_step_beyond_tolerance is None
    # A 1% learning-rate change leaves the forward pass of step 0 alone, then shows.
    assert skewed.verdict == DIFFERENT and skewed.first_step_beyond_tolerance == 1
    assert skewed.max_abs_weight_diff > skewed.weight_tolerance
    assert "different" in shared_start.table(loaded).markdown()
    assert not any(m in sys.modules for m in ("jax", "torch", "tensorflow", "keras"))


def test_several_depths_label_each_pair(tmp_path: Path) -> None:
    assert _parity(tmp_path, SAME, "--depth", "1,2") == 0
    doc = json.loads((tmp_path / shared_start.FILE_NAME).read_text())
    assert [p["layer_sizes"] for p in doc["pairs"]] == [[32], [64, 32]]
    assert doc["pairs"][1]["note"].startswith("layers [64, 32]")


def test_a_failed_worker_exits_1_and_keeps_the_other_pairs(tmp_path: Path) -> None:
    assert _parity(tmp_path, f"{SAME},{BROKEN}") == 1
    doc = json.loads((tmp_path / shared_start.FILE_NAME).read_text())
    assert [p["impl"] for p in doc["pairs"]] == [SAME]
    assert len(doc["failed"]) == 1 and BROKEN in doc["failed"][0]


@pytest.mark.parametrize("extra", [
    ["--steps", "0"],
    ["--steps", "11"],  # more than the 10 batches of data.train
    ["--depth", "x"],
    ["--jobs", "0"],
    ["--impl", "no-such-impl"],
    ["--dataset", "tests.harness.fake_data:nothing"],
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, extra: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _parity(tmp_path, SAME, *extra) == EXIT_USAGE
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / shared_start.FILE_NAME).exists()


def test_compare_reports_shape_and_name_problems() -> None:
    losses, weights = np.array([1.0, 0.5]), {"w": np.ones((2, 3), np.float32)}
    ok = compare("a", "b", (losses, weights), (losses.copy(), dict(weights)))
    assert ok["verdict"] == EQUIVALENT and ok["max_abs_weight_diff"] == 0.0
    short = compare("a", "b", (losses[:1], weights), (losses, weights))
    assert short["verdict"] == DIFFERENT and short["max_abs_loss_diff"] is None
    missing = compare("a", "b", (losses, {}), (losses, weights))
    assert missing["verdict"] == DIFFERENT and "worst weight w (inf" in missing["note"]
    within = {"w": weights["w"] + np.float32(5e-6)}  # 5e-6 < 1e-5 * (1 + 1)
    assert weight_mismatch(within, weights) is None
    beyond = {"w": weights["w"] + np.float32(3e-5)}
    assert weight_mismatch(beyond, weights) is not None
