"""Command-line values -> the sweep: lists, ranges, impl names, the cross product."""

from __future__ import annotations

import pytest

from bench import registry
from bench.errors import UsageError
from bench.run import sweep
from bench.spec import RunSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", [3]), ("1,2,3", [1, 2, 3]), ("0-4", [0, 1, 2, 3, 4]), ("2,0-1,2", [2, 0, 1])],
)
def test_int_lists_and_ranges(text: str, expected: list[int]) -> None:
    assert sweep.parse_int_list(text, "--seed", minimum=0) == expected


@pytest.mark.parametrize("text", ["0", "-1", "x", "1,,2", ""])
def test_bad_depths_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--depth"):
        sweep.parse_int_list(text, "--depth")


def test_layers_override_depth() -> None:
    assert sweep.layer_stacks([1, 3], None) == [(32,), (128, 64, 32)]
    assert sweep.layer_stacks([1], ["256,128,32", "64,32"]) == [(256, 128, 32), (64, 32)]
    with pytest.raises(UsageError, match="--layers"):
        sweep.parse_layers("64,0")


def test_all_means_the_five_primary_implementations() -> None:
    names = [e.name for e in sweep.resolve_impls("all")]
    assert names == list(registry.PRIMARY)


def test_unknown_impl_suggests_the_nearest_name() -> None:
    with pytest.raises(UsageError, match="did you mean 'keras-jax'"):
        sweep.resolve_impls("keras-jaxx")


def test_out_of_tree_impl_must_exist() -> None:
    entry = sweep.resolve_impls("tests.harness.fake_impl:FakeImpl")[0]
    assert entry.target == "tests.harness.fake_impl:FakeImpl"
    with pytest.raises(UsageError, match="not found"):
        sweep.resolve_impls("tests.harness.no_such_module:X")


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.ImplEntry(name="x", target="m:C", framework="x", requires=("no_such_mod",),
                               extra="xx")
    monkeypatch.setitem(registry.REGISTRY, "x", entry)
    with pytest.raises(UsageError, match=r"pip install -e '\.\[xx\]'"):
        sweep.resolve_impls("x")


def test_cross_product_alternates_implementations() -> None:
    entries = sweep.resolve_impls("keras-jax,torch")
    runs = sweep.expand(entries, [(32,), (64, 32)], [0, 1], repeats=2, epochs=2)
    assert len(runs) == 2 * 2 * 2 * 2
    assert [r.spec.impl for r in runs[:4]] == ["keras-jax", "torch", "keras-jax", "torch"]
    keys = {(r.spec.spec_hash(), r.repeat) for r in runs}
    assert len(keys) == len(runs)  # every run distinct for --resume
    assert all(r.spec.epochs == 2 for r in runs)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("tests.harness.fake_impl:FakeImpl", True),
        ("mod:make", True),
        ("keras-jax", False),
        ("ml-100k", False),
        ("synthetic:users=50,movies=300,ratings=3000", False),
    ],
)
def test_out_of_tree_references_are_told_from_dataset_names(name: str, target: bool) -> None:
    assert registry.is_target(name) is target


def test_a_backwards_range_is_refused_not_dropped() -> None:
    with pytest.raises(UsageError, match="runs backwards; write 1-3"):
        sweep.parse_int_list("0,3-1", "--seed", minimum=0)


def test_a_run_label_names_its_device_count_and_split() -> None:
    entry = registry.get("jax")
    one = sweep.Run(RunSpec(impl="jax"), 0, entry).label()
    many = sweep.Run(RunSpec(impl="jax", devices=4, split="seed"), 0, entry).label()
    assert "devices" not in one and "split" not in one
    assert many.endswith("seed 0 rep 0 on 4 devices (split seed)")
