"""The shared-start step-level parity artifact: shown, counted by --check, validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.report.shared_start import FILE_NAME
from tests.report.records import study, write_study


def _pair(impl: str, verdict: str, first_step: int | None) -> dict:
    return {"impl": impl, "baseline": "keras-jax", "verdict": verdict,
            "max_abs_loss_diff": 3e-7 if first_step is None else 2e-3, "loss_tolerance": 1e-5,
            "first_step_beyond_tolerance": first_step, "max_abs_weight_diff": 1e-6,
            "weight_tolerance": 1e-4, "note": ""}


def _results(tmp_path: Path, pairs: list[dict]) -> Path:
    results = write_study(tmp_path / "r", study({"keras-jax": [0.3, 0.31], "jax": [0.3, 0.31]}))
    doc = {"steps": 20, "seed": 0, "layer_sizes": [32], "pairs": pairs}
    (results / FILE_NAME).write_text(json.dumps(doc))
    return results


def test_shared_start_result_is_shown_and_written_as_csv(tmp_path: Path) -> None:
    results = _results(tmp_path, [_pair("jax", "equivalent", None)])
    assert main(["report", "--no-plots", "--results", str(results), "--check"]) == 0
    text = (results / "README.md").read_text()
    assert "20 steps from the shared initial weights of seed 0" in text
    assert "| jax | keras-jax | 3.00e-07 (tol 1.00e-05) | – |" in text
    assert (results / "shared_start_parity.csv").read_text().count("\n") == 2


def test_a_different_shared_start_pair_fails_check(tmp_path: Path, capsys) -> None:
    results = _results(tmp_path, [_pair("jax", "equivalent", None),
                                  _pair("torch", "different", 7)])
    assert main(["report", "--no-plots", "--results", str(results), "--check"]) == 1
    assert "torch vs keras-jax (shared-start steps)" in capsys.readouterr().out
    assert "| torch | keras-jax | 2.00e-03 (tol 1.00e-05) | 7 |" in \
        (results / "README.md").read_text()


def test_malformed_shared_start_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    results = _results(tmp_path, [{"impl": "jax"}])
    assert main(["report", "--no-plots", "--results", str(results)]) == 2
    assert FILE_NAME in capsys.readouterr().err
    assert not (results / "README.md").exists()


@pytest.mark.parametrize("damage", [
    {"verdict": "banana"}, {"verdict": None}, {"verdict": "Different"},
    {"verdict": "different", "expected": 123}, {"verdict": "different", "expected": ["a"]},
])
def test_unreadable_verdicts_fail_check_instead_of_passing(tmp_path: Path, damage: dict,
                                                           capsys) -> None:
    """--check must not pass a verdict it cannot read, nor take a non-text as a known cause."""
    results = _results(tmp_path, [{**_pair("jax", "equivalent", None), **damage}])
    assert main(["report", "--no-plots", "--results", str(results), "--check"]) == 2
    assert FILE_NAME in capsys.readouterr().err
    assert not (results / "README.md").exists()


def test_malformed_header_is_a_usage_error_not_a_crash(tmp_path: Path, capsys) -> None:
    results = _results(tmp_path, [_pair("jax", "equivalent", None)])
    doc = json.loads((results / FILE_NAME).read_text())
    (results / FILE_NAME).write_text(json.dumps({**doc, "steps": "five", "failed": "all"}))
    assert main(["report", "--no-plots", "--results", str(results)]) == 2
    assert "cannot read" in capsys.readouterr().err
