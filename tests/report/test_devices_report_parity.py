"""devices_parity.json: every device count in one file, and known causes marked `expected`.

bench/parity/runner.py's document is built from results written by hand (no worker, no
framework): `--devices 2,4` gives one pair per (implementation, N), each against the one
one-device run; KNOWN_DIFFERENCES turns a `different` into an expected one, never an
`equivalent`; the report reads it all back.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from bench.cli import main
from bench.errors import EXIT_USAGE
from bench.parity import runner
from bench.parity.compare import save_result
from bench.report import devices, shared_start
from bench.spec import layers_for_depth

LAYERS = layers_for_depth(1)


def _plan(names: tuple[str, ...], counts: tuple[int, ...]) -> runner.Plan:
    dataset: Any = SimpleNamespace(name="tiny")
    return runner.Plan(names=names, depths=(1,), steps=4, batch_size=100, seed=0,
                       dataset=dataset, timeout_s=10.0, jobs=1, devices=counts)


def _job(tmp: Path, impl: str, n: int, skew: float) -> runner.Job:
    """A finished job whose losses and weights are the one-device run's, scaled by 1 + skew."""
    out = tmp / f"{impl}-x{n}.npz"
    losses = np.array([0.7, 0.6, 0.5, 0.4]) * (1 + skew)
    save_result(out, losses, {"w": np.full((3, 2), 0.5 * (1 + skew), np.float32)})
    return runner.Job(impl, LAYERS, out, devices=n)


def _document(tmp_path: Path, skews: dict[tuple[str, int], float]) -> dict[str, Any]:
    names = tuple(sorted({impl for impl, _ in skews}))
    counts = tuple(sorted({n for _, n in skews} - {1}))
    jobs = [_job(tmp_path, impl, n, skew) for (impl, n), skew in skews.items()]
    return runner._document(_plan(names, counts), jobs)


def test_two_counts_one_file_each_against_one_device(tmp_path: Path) -> None:
    doc = _document(tmp_path, {("jax", 1): 0.0, ("jax", 2): 0.0, ("jax", 4): 1e-3})
    assert doc["devices"] == [2, 4] and doc["failed"] == []
    by_n = {p["devices"]: p for p in doc["pairs"]}
    assert set(by_n) == {2, 4}
    assert by_n[2]["verdict"] == "equivalent" and by_n[2]["expected"] is None
    assert (by_n[4]["impl"], by_n[4]["baseline"]) == ("jax x4", "jax x1")
    assert by_n[4]["verdict"] == "different" and by_n[4]["first_step_beyond_tolerance"] == 0
    assert by_n[4]["implementation"] == "jax" and by_n[4]["worst_weight"] == "w"
    path = tmp_path / devices.DEVICES_FILE
    path.write_text(json.dumps(doc))
    loaded = shared_start.load(tmp_path, devices.DEVICES_FILE)
    assert loaded.devices == (2, 4) and [p.devices for p in loaded.pairs] == [2, 4]
    assert [p.unexplained for p in loaded.pairs] == [False, True]


def test_known_cause_marks_a_difference_expected_not_an_equivalence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(runner.KNOWN_DIFFERENCES, (runner.DEVICES, "keras-tf"), "its cause")
    doc = _document(tmp_path, {("keras-tf", 1): 0.0, ("keras-tf", 2): 1e-3,
                               ("jax", 1): 0.0, ("jax", 2): 1e-3})
    pairs = {p["implementation"]: p for p in doc["pairs"]}
    assert pairs["keras-tf"]["expected"] == "its cause"
    assert pairs["keras-tf"]["note"].startswith("expected: its cause; losses beyond")
    assert pairs["jax"]["expected"] is None  # no cause known: --check fails on it
    calm = _document(tmp_path, {("keras-tf", 1): 0.0, ("keras-tf", 2): 0.0})
    assert calm["pairs"][0]["expected"] is None and calm["pairs"][0]["note"] == ""


def test_the_reference_cause_is_not_a_devices_cause(tmp_path: Path) -> None:
    """One table, keyed by comparison: keras-tf's Adagrad cause excuses nothing across devices."""
    assert (runner.REFERENCE, "keras-tf") in runner.KNOWN_DIFFERENCES
    doc = _document(tmp_path, {("keras-tf", 1): 0.0, ("keras-tf", 2): 1e-3})
    assert doc["pairs"][0]["verdict"] == "different" and doc["pairs"][0]["expected"] is None


@pytest.mark.parametrize(("devices_flag", "message"), [
    ("1,2", "list only counts above 1"), ("2,3", "does not split evenly"),
    ("0", "--devices must be >= 1"), ("x", "--devices: expected an integer")])
def test_bad_device_lists_are_refused(tmp_path: Path, devices_flag: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["parity", "--impl", "jax", "--devices", devices_flag, "--batch-size", "100",
            "--results", str(tmp_path / "r")]
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
