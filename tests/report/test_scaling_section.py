""""How cost grows": series of dataset sizes and their exponents; no series, no section."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bench.report import build, files
from bench.report.scaling import AGAINST_RATINGS, AGAINST_TABLE, COMMANDS_FILE, find_series
from bench.store import ResultsStore
from tests.report.records import make_record

# (ratings, users, movies): (a) tables proportional to ratings, (b) user rows at 1M ratings.
GRID = [(100_000, 1_000, 1_000), (1_000_000, 10_000, 10_000), (10_000_000, 100_000, 100_000),
        (1_000_000, 1_000, 10_000), (1_000_000, 100_000, 10_000),
        (1_000_000, 1_000_000, 10_000)]


def _scaled(impl: str, seed: int, ratings: int, users: int, movies: int) -> dict[str, Any]:
    """A capped run on a synthetic dataset: `linear` grows with ratings, `sparse` never grows."""
    name = f"synthetic:users={users},movies={movies},ratings={ratings},seed=0"
    rec = make_record(impl=impl, seed=seed, epochs=3, dataset_hash=f"h{ratings}-{users}",
                      steps_per_epoch=100, eval_rows=10_000, dataset=name)
    rec["dataset"]["name"] = name
    need = 3.0 * (users + movies) * 32 * 4 / 2**20 + ratings * 100 / 2**20
    step = 1e-4 * ratings if impl == "linear" else 2.0
    rec["figures"].update({
        "train_rows": ratings * 4 // 5, "test_rows": ratings - ratings * 4 // 5,
        "num_users": users, "num_movies": movies, "train_step_ms": step,
        "peak_rss_train_mb": 300.0 + 2 * need, "peak_rss_mb": 400.0 + 2 * need,
        "need_mb": need, "rss_after_load_mb": 100.0,
        "rss_after_import_mb": 250.0 if impl == "linear" else 400.0})
    return rec


def _grid(impls: tuple[str, ...] = ("linear", "sparse")) -> list[dict[str, Any]]:
    return [_scaled(i, s, *size) for size in GRID for i in impls for s in (0, 1)]


def test_the_grid_forms_one_series_per_axis_with_its_exponents() -> None:
    grouped = build.group_records(_grid())
    by_axis = {s.against: s for s in find_series(grouped.groups)}
    assert set(by_axis) == {AGAINST_RATINGS, AGAINST_TABLE}
    ratings, table = by_axis[AGAINST_RATINGS], by_axis[AGAINST_TABLE]
    assert [p.ratings for p in ratings.points] == [100_000, 1_000_000, 10_000_000]
    assert [p.users for p in table.points] == [1_000, 10_000, 100_000, 1_000_000]
    assert ratings.exponent("linear", "train_step_ms") == pytest.approx(1.0)
    assert ratings.exponent("sparse", "train_step_ms") == pytest.approx(0.0, abs=1e-9)
    assert table.exponent("linear", "train_step_ms") == pytest.approx(0.0, abs=1e-9)
    assert 0 < table.exponent("sparse", "peak_rss_train_mb") < 1


def test_other_specs_or_old_records_form_no_series() -> None:
    old = [make_record(impl="jax", dataset_hash=h) for h in ("a", "b")]  # no size figures
    mixed = [_scaled("jax", 0, *GRID[0]), _scaled("jax", 0, *GRID[1])]
    mixed[1]["spec"]["epochs"] = 4  # another spec: not one family
    assert find_series(build.group_records(old + mixed).groups) == []


def test_report_shows_the_section_and_leaves_its_groups_out_of_verdicts(tmp_path: Path) -> None:
    results = tmp_path / "scaling"
    store = ResultsStore(results)
    ml1m = [make_record(impl=i, seed=s, dataset="ml-1m", dataset_hash="m1")
            for i in ("keras-jax", "jax") for s in (0, 1, 2)]
    for rec in ml1m:
        rec["dataset"]["name"] = "ml-1m"
    for rec in _grid() + ml1m:
        store.append(rec)
    (results / COMMANDS_FILE).write_text("python -m bench run --impl jax --steps-per-epoch 100\n")
    report = build.build(list(store.iter_dicts()), results)
    assert len(report.scaling) == 2
    # ml-1m is an ordinary group with its own tables and a TOST verdict; the grid is not.
    assert [g.key.dataset for g in report.groups] == ["ml-1m"]
    assert [v.impl for v in report.groups[0].verdicts] == ["jax"]
    files.write(report, results, with_plots=True)
    text = (results / "README.md").read_text()
    assert "## How cost grows" in text and "--steps-per-epoch 100" in text
    assert "steps per epoch (cap) 100" in text and "| linear | 10,000,000 |" in text
    assert "forming series of dataset sizes" in text
    assert len(list((results / "plots").glob("scaling-*.png"))) == 4
    exps = (results / "scaling_exponents.csv").read_text().splitlines()
    assert len(exps) == 1 + 2 * 2 and "framework_import_mb" in (results / "scaling.csv").read_text()


def test_no_series_no_section(tmp_path: Path) -> None:
    recs = [make_record(impl=i, seed=s) for i in ("keras-jax", "jax") for s in (0, 1)]
    report = build.build(recs, tmp_path)
    assert report.scaling == []
    files.write(report, tmp_path, with_plots=False)
    assert "How cost grows" not in (tmp_path / "README.md").read_text()
    assert not (tmp_path / "scaling.csv").exists()


def test_missing_figures_are_nan_not_errors() -> None:
    recs = _grid(("linear",))
    for r in recs:
        del r["figures"]["need_mb"]
    (series, _) = find_series(build.group_records(recs).groups)
    assert math.isnan(series.exponent("linear", "need_mb"))
