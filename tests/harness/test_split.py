"""The train/test split as a RunSpec field: `--split cache|seed|N`, its hash, record and key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.report.runs import group_key
from bench.spec import RunSpec, check_split
from tests.harness.conftest import bench_run, fake_args, read_lines


def test_the_default_split_leaves_old_spec_hashes_unchanged() -> None:
    spec = RunSpec(impl="keras-jax", seed=3)
    old = dict(spec.to_dict())  # what a spec written before `split` existed held
    assert "split" not in old and RunSpec.from_dict(old) == spec
    blob = json.dumps(old, sort_keys=True, separators=(",", ":")).encode()
    assert spec.spec_hash() == hashlib.sha256(blob).hexdigest()[:16]
    seeded = RunSpec(impl="keras-jax", seed=3, split="seed")
    assert seeded.to_dict()["split"] == "seed" and seeded.spec_hash() != spec.spec_hash()
    assert RunSpec.from_dict(seeded.to_dict()) == seeded


@pytest.mark.parametrize(("split", "seed", "expected"),
                         [("cache", 5, None), ("seed", 5, 5), ("seed", 0, 0), ("7", 5, 7)])
def test_split_seed_resolves_the_split(split: str, seed: int, expected: int | None) -> None:
    assert RunSpec(impl="x", seed=seed, split=split).split_seed() == expected


@pytest.mark.parametrize(("text", "canonical"), [("cache", "cache"), ("seed", "seed"),
                                                 ("0", "0"), ("007", "7"), ("4294967295", None)])
def test_check_split_accepts_and_canonicalises(text: str, canonical: str | None) -> None:
    assert check_split(text) == (canonical or text)


@pytest.mark.parametrize(("text", "message"), [
    ("-1", "expected cache, seed or a split seed"), ("random", "expected cache, seed"),
    ("1.5", "expected cache"), ("", "expected cache"), ("4294967296", "must be <= 4294967295"),
    ("9" * 5000, "5000-digit number"),
])
def test_check_split_refuses_in_one_line(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        check_split(text)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_the_comparability_key_separates_splits() -> None:
    def record(split: str, seed: int, impl: str = "a") -> dict:
        spec = RunSpec(impl=impl, seed=seed, split=split).to_dict()
        return {"spec": spec, "environment": {}, "dataset": {"content_hash": "h"}}

    assert group_key(record("cache", 0)) == group_key(record("cache", 1, "b"))
    assert group_key(record("seed", 0)) == group_key(record("seed", 1, "b"))
    assert len({group_key(record(s, 0)) for s in ("cache", "seed", "7", "8")}) == 4


def test_dry_run_shows_the_split(results: Path) -> None:
    out = bench_run(*fake_args("FakeImpl", extra=("--seed", "0-1", "--split", "seed",
                                                  "--dry-run")), results=results)
    assert out.returncode == 0, out.stderr
    assert "FakeImpl [32] seed 1 rep 0 (split seed)" in out.stdout
    hashes = {line.split("spec ")[-1] for line in out.stdout.strip().splitlines()}
    assert len(hashes) == 2
    plain = bench_run(*fake_args("FakeImpl", extra=("--seed", "0-1", "--dry-run")),
                      results=results)
    assert "split" not in plain.stdout
    assert hashes.isdisjoint(line.split("spec ")[-1] for line in plain.stdout.splitlines())
    assert not results.exists()


def test_the_record_carries_the_split_and_resume_keys_on_it(results: Path) -> None:
    args = fake_args("FakeImpl", epochs=2, extra=("--split", "07"))
    assert bench_run(*args, results=results).returncode == 0
    (rec,) = read_lines(results)
    assert rec["spec"]["split"] == "7"
    assert RunSpec.from_dict(rec["spec"]).split_seed() == 7
    again = bench_run(*args, "--resume", "--dry-run", results=results)
    assert "(recorded ok: skipped)" in again.stdout
    other = bench_run(*fake_args("FakeImpl", epochs=2, extra=("--resume", "--dry-run")),
                      results=results)
    assert other.returncode == 0 and "skipped" not in other.stdout


def test_a_bad_split_is_one_line_exit_2_and_writes_nothing(results: Path) -> None:
    out = bench_run(*fake_args("FakeImpl", extra=("--split", "random")), results=results)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "--split" in out.stderr
    assert not results.exists()


def test_the_worker_trains_and_evaluates_on_the_runs_split(tmp_path: Path) -> None:
    """--split 7 moves rows between train and test (losses and accuracy change); repeatable."""
    def run(split: str, name: str) -> dict:
        out = tmp_path / name
        assert bench_run(*fake_args("FakeImpl", epochs=2, extra=("--split", split)),
                         results=out).returncode == 0
        (rec,) = read_lines(out)
        return rec
    cache, seven, again = run("cache", "a"), run("7", "b"), run("7", "c")
    assert cache["curve"]["epoch_loss"] != seven["curve"]["epoch_loss"]
    assert seven["curve"]["epoch_loss"] == again["curve"]["epoch_loss"]
    assert seven["figures"]["test_rows"] == cache["figures"]["test_rows"]


def test_an_own_split_target_is_not_re_split(tmp_path: Path) -> None:
    """A module:Class declaring shared_start False trains on the rows it is given, any --split."""
    def losses(impl: str, split: str, name: str) -> list[float]:
        out = tmp_path / name
        assert bench_run(*fake_args(impl, epochs=2, extra=("--split", split)),
                         results=out).returncode == 0
        (rec,) = read_lines(out)
        assert rec["impl_info"]["shared_start"] is (impl == "FakeImpl")
        return rec["curve"]["epoch_loss"]
    own_cache, own_seven = losses("OwnStartImpl", "cache", "a"), losses("OwnStartImpl", "7", "b")
    assert own_seven == own_cache
    assert losses("FakeImpl", "7", "c") != own_seven  # the same class, shared: re-split
