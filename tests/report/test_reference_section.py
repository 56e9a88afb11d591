"""The report's "Against the reference program" section, and the pairing rule it relies on."""

from __future__ import annotations

import csv
import io
import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.report.build import build
from bench.report.parity import DIFFERENT, SPLIT_CONFOUNDED
from bench.report.published import published_accuracy
from bench.report.reference import placement
from tests.report.records import make_record, write_study

DEPTH1, DEPTH3 = (32,), (128, 64, 32)
# Fixed per-seed offsets, mean 0 and SD 0.004: the same spread on every side.
_Z = (-1.5, -1.0, -0.6, -0.2, 0.0, 0.1, 0.3, 0.7, 1.0, 1.2)
NOISE = [0.004 * z / statistics.stdev(_Z) for z in _Z]
MEANS = {("keras-jax", DEPTH1): 0.325, ("keras-reference", DEPTH1): 0.322,
         ("keras-jax", DEPTH3): 0.306, ("keras-reference", DEPTH3): 0.305}


def _patched(rec: dict[str, Any], split: str | None = None, figures: dict[str, Any] | None = None,
             impl_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """A record with spec.split (written as the split helper's RunSpec does), extra figures
    and impl_info fields."""
    if split is not None:
        rec["spec"]["split"] = split
    rec["figures"].update(figures or {})
    rec["impl_info"].update(impl_info or {})
    return rec


def _reference_run(seed: int, layers: tuple[int, ...], acc: float, split: str) -> dict[str, Any]:
    rec = make_record(impl="keras-reference", seed=seed, layers=layers, accuracy=acc,
                      epochs=30, epoch_s=2.0)
    # The reference's own metric loses a slot per top-100 list to the NaN candidate row.
    return _patched(rec, split, {"top100_accuracy_impl": acc - 0.004, "prepare_s": 25.0,
                                 "cache_load_s": 0.0, "build_s": 3.0},
                    {"shared_start": False, "resolved_options": {
                        "nan_candidate_rows": 1, "topk_returns_nan_row": True,
                        "topk_nan_row_query_share": 1.0}})


def _primary_run(seed: int, layers: tuple[int, ...], acc: float, split: str) -> dict[str, Any]:
    rec = make_record(impl="keras-jax", seed=seed, layers=layers, accuracy=acc, epochs=30)
    return _patched(rec, split, {"prepare_s": 0.0, "cache_load_s": 0.03, "build_s": 1.0})


def _records(split: str = "seed", with_reference: bool = True) -> list[dict[str, Any]]:
    makers = {"keras-jax": _primary_run, "keras-reference": _reference_run}
    return [makers[impl](seed, layers, mean + NOISE[seed], split)
            for (impl, layers), mean in MEANS.items()
            if with_reference or impl == "keras-jax" for seed in range(10)]


def _readme(tmp_path: Path, records: list[dict[str, Any]], plots: bool = False) -> str:
    results = write_study(tmp_path / "results", records)
    assert main(["report", "--results", str(results), *([] if plots else ["--no-plots"])]) == 0
    return (results / "README.md").read_text()


def _section(readme: str) -> str:
    start = readme.index("## Against the reference program")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end > 0 else None]


def test_section_gives_the_welch_verdict_costs_and_published_placement(tmp_path: Path) -> None:
    readme = _readme(tmp_path, _records(), plots=True)
    section = _section(readme)
    assert section.count("### Layers") == 2
    assert "**equivalent** (welch:" in section  # 10 vs 10 seeds, Welch: never paired
    assert "paired" not in section
    assert ("nan_candidate_rows=1; topk_returns_nan_row=True; topk_nan_row_query_share=1"
            in section)
    assert "| -0.0040 |" in section  # own - numpy
    assert "| keras-reference | 10 | 25.000 " not in section  # columns: cache load first
    assert "| keras-reference | 10 | 0.000 | 25.000 |" in section
    assert "| 2.00 |" in section  # the reference's epoch against keras-jax's
    # Depth 1: 0.310 lies 3 SDs below the reference's mean; depth 3: 0.301 one SD below.
    assert "| keras-reference | 0.310 | 10: 0.3220 ± 0.0040 | -3.00 |" in section
    assert "| keras-reference | 0.301 | 10: 0.3050 ± 0.0040 | -1.00 |" in section
    assert section.count("(outside)") == 2 and section.count("(inside)") == 2
    assert "carries the split's variance" in section
    assert "![accuracy distributions](plots/against-reference.png)" in section
    png = tmp_path / "results" / "plots" / "against-reference.png"
    assert png.read_bytes().startswith(b"\x89PNG")


def test_section_csvs_hold_the_verdict_costs_and_placement(tmp_path: Path) -> None:
    _readme(tmp_path, _records())
    results = tmp_path / "results"
    acc = list(csv.DictReader(io.StringIO((results / "reference_accuracy.csv").read_text())))
    ref = [r for r in acc if r["impl"] == "keras-reference"]
    assert {r["layer_sizes"] for r in ref} == {"32", "128x64x32"}
    assert {r["design"] for r in ref} == {"welch"} and {r["verdict"] for r in ref} == {
        "equivalent"}
    cost = list(csv.DictReader(io.StringIO((results / "reference_cost.csv").read_text())))
    assert {float(r["prepare_s_median"]) for r in cost if r["impl"] == "keras-reference"} == {25.0}
    placed = list(csv.DictReader(io.StringIO(
        (results / "reference_published.csv").read_text())))
    assert [r["in_pi95"] for r in placed] == ["False", "True"]


def _files(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in sorted(results.rglob("*"))
            if p.is_file() and p.name != "records.jsonl"}


def test_report_is_byte_identical_whatever_the_record_order(tmp_path: Path) -> None:
    records = _records()
    _readme(tmp_path / "a", records, plots=True)
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    _readme(tmp_path / "b", shuffled, plots=True)
    first = _files(tmp_path / "a" / "results")
    assert {"plots/against-reference.png", "reference_accuracy.csv", "reference_cost.csv",
            "reference_published.csv"} <= set(first)
    assert _files(tmp_path / "b" / "results") == first


def test_section_absent_without_reference_records(tmp_path: Path) -> None:
    readme = _readme(tmp_path, _records(with_reference=False))
    assert "Against the reference program" not in readme
    assert not list((tmp_path / "results").glob("reference_*.csv"))


def test_reference_without_keras_jax_says_so(tmp_path: Path) -> None:
    recs = [r for r in _records() if r["impl"] == "keras-reference"]
    section = _section(_readme(tmp_path, recs))
    assert "No comparable group holds both" in section
    assert "without keras-jax runs" in section


def test_interval_line_follows_the_records_split(tmp_path: Path) -> None:
    seeded = _readme(tmp_path / "s", _records("seed"))
    assert "each seed trains and is evaluated on its own split" in seeded
    assert "initial weights' variance only" not in seeded.split("## What was left out")[0]
    fixed = _readme(tmp_path / "c", _records("cache"))
    assert "initial weights' variance only" in fixed
    assert "each seed trains and is evaluated on its own split" not in fixed


@pytest.mark.parametrize("shared_start, design", [(False, "welch"), (None, "paired"),
                                                   (True, "paired")])
def test_an_impl_with_its_own_start_is_never_paired(shared_start: bool | None, design: str,
                                                    tmp_path: Path) -> None:
    """Same seeds on both sides, yet pairing needs both to start from the shared weights
    (absent: an older record, which did)."""
    recs = [make_record(impl="keras-jax", seed=s, accuracy=0.30 + NOISE[s]) for s in range(10)]
    for s in range(10):
        rec = make_record(impl="jax", seed=s, accuracy=0.301 + NOISE[s])
        recs.append(rec if shared_start is None else
                    _patched(rec, impl_info={"shared_start": shared_start}))
    (g,) = build(recs, tmp_path).groups
    (v,) = g.verdicts
    assert v.comparison.design == design


def test_placement_of_a_published_value() -> None:
    row = placement([0.30, 0.31, 0.32], 0.31)
    assert row["z"] == pytest.approx(0.0) and row["in_seed_range"] and row["in_pi95"]
    far = placement([0.30, 0.31, 0.32], 0.40)
    assert far["z"] == pytest.approx(9.0) and not far["in_seed_range"] and not far["in_pi95"]
    assert placement([0.31], 0.31)["in_pi95"] is None  # one seed: no spread, no interval


@pytest.mark.parametrize("split", ["cache", "7"])
def test_an_own_split_impl_on_a_fixed_split_gets_no_verdict(split: str, tmp_path: Path) -> None:
    """On a fixed split the two programs test on different rows: no verdict, never `different`."""
    recs = [make_record(impl="keras-jax", seed=s, accuracy=0.30 + NOISE[s]) for s in range(10)]
    recs += [make_record(impl="jax", seed=s, accuracy=0.35 + NOISE[s]) for s in range(10)]
    for rec in recs[10:]:
        _patched(rec, split, impl_info={"shared_start": False})
    for rec in recs[:10]:
        _patched(rec, split)
    report = build(recs, tmp_path)
    (v,) = report.groups[0].verdicts
    assert v.verdict == SPLIT_CONFOUNDED
    assert report.different() == []
    for rec in recs:
        rec["spec"]["split"] = "seed"
    (v,) = build(recs, tmp_path).groups[0].verdicts
    assert v.verdict == DIFFERENT  # per-seed splits on both sides: the gap is the programs'


def test_no_published_figure_for_capped_or_multi_device_specs() -> None:
    spec = {"layer_sizes": [32], "epochs": 30, "batch_size": 1000, "learning_rate": 0.05,
            "embedding_dim": 32, "top_k": 100, "dataset": "ml-100k"}
    assert published_accuracy(spec) == 0.310
    for extra in ({"eval_rows": 500}, {"steps_per_epoch": 3}, {"devices": 2}):
        assert published_accuracy({**spec, **extra}) is None


def test_the_published_run_is_placed_among_single_runs_not_seed_means(tmp_path: Path) -> None:
    """With 2 repeats a seed, the placement reads each seed's repeat 0 (one run, as published)."""
    records = _records()
    for rec in [r for r in records if r["impl"] == "keras-reference"]:
        acc = rec["figures"]["top100_accuracy_numpy"]
        for repeat, shift in ((0, 0.004), (1, -0.004)):  # seed means unchanged
            extra = _reference_run(rec["spec"]["seed"], tuple(rec["spec"]["layer_sizes"]),
                                   acc + shift, "seed")
            extra["repeat"], extra["run_id"] = repeat, f"{rec['run_id']}-{repeat}"
            records.append(extra)
        records.remove(rec)
    section = _section(_readme(tmp_path, records))
    assert "| keras-reference | 0.310 | 10: 0.3260 ± 0.0040 | -4.00 |" in section
