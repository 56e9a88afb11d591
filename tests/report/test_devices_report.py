""""Data parallel: N devices against one": tables, arithmetic, --check and byte-stable output.

Hand-made records (tests/report/records.py) and a hand-written devices_parity.json; no
framework is imported (the report never imports one).
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import registry
from bench.cli import main
from bench.report import build, devices, files
from bench.report.runs import GroupKey
from bench.store import ResultsStore
from tests.report.records import make_record

# Median train_step_ms (T) and train_examples_per_s (X) per (impl, devices, global batch).
STEP = {("jax", 1, 1000): 2.0, ("jax", 2, 1000): 1.25, ("jax", 4, 1000): 1.0,
        ("jax", 2, 2000): 2.5, ("torch", 1, 1000): 4.0, ("torch", 2, 1000): 8.0,
        ("torch", 2, 2000): 10.0}


def _record(impl: str, seed: int, n: int, batch: int, step: float,
            device: str = "cpu") -> dict[str, Any]:
    """One run at `n` devices and global `batch` whose median step took `step` ms."""
    rec = make_record(impl=impl, seed=seed, batch_size=batch, devices=n, epochs=3)
    rec["figures"].update({"train_step_ms": step, "train_examples_per_s": batch / step * 1000})
    rec["spec"]["device"] = device
    if n > 1:
        rec["impl_info"]["resolved_options"] = {"data_parallel": {
            "devices": n, "global_batch": batch, "per_device_batch": batch // n,
            "mechanism": f"{impl}-mechanism", "collective": f"{impl}-all-reduce",
            "device_list": [f"cpu:{i}" for i in range(n)], "simulated": device == "cpu"}}
    return rec


def _study(device: str = "cpu") -> list[dict[str, Any]]:
    """Three seeds of every STEP point; seeds jitter by -0.1/0/+0.1 so the median is STEP's."""
    return [_record(impl, seed, n, batch, step + 0.1 * (seed - 1), device=device)
            for (impl, n, batch), step in STEP.items() for seed in range(3)]


def _pair(impl: str, n: int, verdict: str, expected: str | None = None,
          first: int | None = None) -> dict[str, Any]:
    return {"impl": f"{impl} x{n}", "baseline": f"{impl} x1", "implementation": impl,
            "devices": n, "layer_sizes": [32], "verdict": verdict, "expected": expected,
            "max_abs_loss_diff": 3e-8 if first is None else 2e-3, "loss_tolerance": 8e-7,
            "first_step_beyond_tolerance": first, "max_abs_weight_diff": 1e-8,
            "weight_tolerance": 1e-5, "worst_weight": "query/user_embedding",
            "note": (f"expected: {expected}; " if expected else "")
            + ("" if first is None else f"losses beyond tolerance from step {first}")}


def _parity_file(results: Path, pairs: list[dict[str, Any]]) -> None:
    doc = {"steps": 20, "seed": 0, "layer_sizes": [32], "batch_size": 1000,
           "dataset": "ml-100k", "devices": [2, 4], "loss_rule": "loss rule",
           "weight_rule": "weight rule", "pairs": pairs, "failed": []}
    results.mkdir(parents=True, exist_ok=True)
    (results / devices.DEVICES_FILE).write_text(json.dumps(doc))


def _store(results: Path, records: list[dict[str, Any]]) -> Path:
    store = ResultsStore(results)
    for rec in records:
        store.append(rec)
    return results


def _rows(table: Any) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["impl"], r["devices"]): r for r in table.rows}


def test_strong_and_weak_scaling_arithmetic(tmp_path: Path) -> None:
    report = build.build(_study(), tmp_path)
    dp = report.data_parallel
    assert dp is not None and len(dp.families) == 1
    fam = dp.families[0]
    strong, weak = _rows(devices.strong_table(fam)), _rows(devices.weak_table(fam))
    assert set(strong) == {("jax", 2), ("jax", 4), ("torch", 2)}
    jax2, jax4, torch2 = strong["jax", 2], strong["jax", 4], strong["torch", 2]
    assert (jax2["step_ms_1"], jax2["step_ms_n"]) == pytest.approx((2.0, 1.25))
    assert jax2["speedup"] == pytest.approx(1.6) and jax2["efficiency"] == pytest.approx(0.8)
    assert jax4["efficiency"] == pytest.approx(2.0 / (4 * 1.0))
    assert torch2["efficiency"] == pytest.approx(4.0 / (2 * 8.0))
    assert (jax2["global_batch"], jax2["per_device_batch"], jax2["runs_1"], jax2["runs_n"]) \
        == (1000, 500, 3, 3)
    # Weak: N devices at 2000 against one at 1000, examples per second per device.
    assert set(weak) == {("jax", 2), ("torch", 2)}
    w = weak["jax", 2]
    assert w["examples_per_s_per_device_1"] == pytest.approx(1000 / 2.0 * 1000)
    assert w["examples_per_s_per_device_n"] == pytest.approx(2000 / 2.5 * 1000 / 2)
    assert w["ratio"] == pytest.approx(2.0 / 2.5)
    assert weak["torch", 2]["ratio"] == pytest.approx(4.0 / 10.0)
    assert fam.simulated and fam.mechanisms["jax"] == "jax-mechanism, collective: jax-all-reduce"


def test_multi_device_groups_leave_the_main_tables(tmp_path: Path) -> None:
    # A 1-device group at batch 500, only the weak baseline of (jax, 2, 1000): also apart.
    report = build.build(_study() + [_record("jax", s, 1, 500, 1.5) for s in range(2)], tmp_path)
    assert [devices.devices_of(g.key) for g in report.groups] == [1]
    assert {g.key.spec_dict()["batch_size"] for g in report.groups} == {1000}
    dp = report.data_parallel
    assert dp is not None and dp.weak_only == 1 and len(dp.members) == 4  # 3 + 1
    weak = [r for r in dp.families[0].weak if (r["impl"], r["devices"]) == ("jax", 2)]
    assert [r["global_batch"] for r in weak] == [1000, 2000]
    files.write(report, tmp_path, with_plots=False)
    text = (tmp_path / "README.md").read_text()
    assert ("3 group(s) of runs over several devices, and 1 one-device group(s) serving only "
            "as their weak-scaling baselines") in text


def test_section_parity_table_refusals_and_simulated_marker(tmp_path: Path) -> None:
    _parity_file(tmp_path, [_pair("jax", 2, "equivalent"), _pair("jax", 4, "equivalent"),
                            _pair("keras-tf", 2, "different", first=3)])
    report = build.build(_study(), tmp_path)
    files.write(report, tmp_path, with_plots=False)
    text = (tmp_path / "README.md").read_text()
    assert "## Data parallel: N devices against one" in text
    assert f"**{devices.SIMULATED}**" in text and devices.REAL not in text
    section = text[text.index("### Parity: does N devices"):]
    assert "| keras-tf | 32 | 2 | **different** | 3 | query/user_embedding |" in section
    refusing = [i for i in registry.PRIMARY if i not in registry.DATA_PARALLEL]
    assert refusing, "some primary implementation refuses --devices"
    for name in refusing:
        why = registry.NO_DATA_PARALLEL.get(name, "no data-parallel path in this harness")
        assert f"| {name} | – | – | **refused** | – | – | – | – | {why} |" in section
    for csv in ("data_parallel_parity.csv", "data_parallel_strong.csv",
                "data_parallel_weak.csv"):
        assert (tmp_path / csv).is_file()
    assert not any(m in sys.modules for m in ("jax", "torch", "tensorflow", "keras"))


def test_real_gpus_are_marked_as_such(tmp_path: Path) -> None:
    report = build.build(_study(device="gpu"), tmp_path)
    dp = report.data_parallel
    assert dp is not None and not dp.families[0].simulated
    assert dp.families[0].marker == devices.REAL


def test_unmatched_multi_device_group_is_named(tmp_path: Path) -> None:
    report = build.build([_record("jax", 0, 2, 2000, 2.5)], tmp_path)
    dp = report.data_parallel
    assert dp is not None and report.groups == [] and len(dp.unmatched) == 1
    files.write(report, tmp_path, with_plots=False)
    assert "no one-device run of the same spec" in (tmp_path / "README.md").read_text()


def test_no_devices_no_section(tmp_path: Path) -> None:
    report = build.build([make_record(impl="jax", seed=s) for s in range(2)], tmp_path)
    files.write(report, tmp_path, with_plots=False)
    assert "Data parallel" not in (tmp_path / "README.md").read_text()
    assert not (tmp_path / "data_parallel_parity.csv").exists()


@pytest.mark.parametrize(("expected", "exit_code"), [(None, 1), ("a known cause", 0)])
def test_check_fails_on_an_unexplained_devices_difference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], expected: str | None,
        exit_code: int) -> None:
    results = _store(tmp_path / "r", _study())
    _parity_file(results, [_pair("jax", 2, "equivalent"),
                           _pair("keras-tf", 4, "different", expected=expected, first=5)])
    argv = ["report", "--results", str(results), "--no-plots", "--check"]
    assert main(argv) == exit_code
    out = capsys.readouterr().out
    if expected is None:
        assert "check failed" in out and "keras-tf x4 vs keras-tf x1" in out
    else:
        assert "check failed" not in out and "a known cause" in out
        readme = (results / "README.md").read_text()
        assert "**different** (expected)" in readme and "expected: a known cause" in readme


def test_shared_start_expected_difference_passes_check_unexplained_fails(tmp_path: Path) -> None:
    pair = {"impl": "keras-tf", "baseline": "jax", "verdict": "different",
            "max_abs_loss_diff": 1e-3, "loss_tolerance": 1e-6, "first_step_beyond_tolerance": 6,
            "max_abs_weight_diff": 1e-3, "weight_tolerance": 1e-5, "note": "n"}
    results = _store(tmp_path / "r", _study())
    for expected, code in ((None, 1), ("its cause", 0)):
        doc = {"steps": 20, "seed": 0, "layer_sizes": [32], "pairs": [{**pair,
                                                                        "expected": expected}]}
        (results / "shared_start_parity.json").write_text(json.dumps(doc))
        assert main(["report", "--results", str(results), "--no-plots", "--check"]) == code


def test_rerun_and_record_order_give_identical_bytes(tmp_path: Path) -> None:
    records = _study()
    shuffled = list(records)
    random.Random(7).shuffle(shuffled)
    outputs = []
    for name, recs in (("a", records), ("b", shuffled)):
        results = _store(tmp_path / name, recs)
        _parity_file(results, [_pair("torch", 2, "equivalent"), _pair("jax", 4, "equivalent"),
                               _pair("jax", 2, "equivalent")])
        for _ in range(2):
            assert main(["report", "--results", str(results), "--no-plots"]) == 0
            outputs.append({p.name: p.read_bytes() for p in sorted(results.iterdir())
                            if p.suffix in (".md", ".csv")})
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]
    assert "data_parallel_strong.csv" in outputs[0]


def test_group_devices_of_reads_the_spec() -> None:
    key = build.group_records([_record("jax", 0, 2, 1000, 1.0)]).sorted_groups()[0][0]
    assert isinstance(key, GroupKey) and devices.devices_of(key) == 2
    assert math.isnan(devices._ratio(1.0, 0.0))
