"""Grouping never mixes machines, GPUs, dataset hashes or specs; left-out records are counted."""

from __future__ import annotations

from bench.report.runs import differing_fields, group_records
from tests.report.records import make_record


def _impls_by_group(records: list[dict]) -> list[set[tuple[str, int]]]:
    g = group_records(records)
    return [{(r.impl, r.seed) for r in runs} for _, runs in g.sorted_groups()]


def test_same_machine_dataset_and_spec_form_one_group_over_impls_and_seeds() -> None:
    recs = [make_record(impl=i, seed=s) for i in ("keras-jax", "jax", "torch") for s in (0, 1)]
    (group,) = _impls_by_group(recs)
    assert len(group) == 6


def test_other_machine_is_never_mixed() -> None:
    recs = [make_record(impl="keras-jax"), make_record(impl="jax"),
            make_record(impl="jax", environment={"cpu_model": "Other CPU"}),
            make_record(impl="jax", environment={"cpu_count_logical": 64}),
            make_record(impl="jax", environment={"gpus": [{"name": "NVIDIA H200"}]})]
    groups = group_records(recs)
    assert len(groups.groups) == 4
    machines = {(k.machine, k.gpu) for k in groups.groups}
    assert ("Other CPU (2 logical cores)", "none") in machines
    assert ("Test CPU 9000 (2 logical cores)", "NVIDIA H200") in machines


def test_other_dataset_hash_or_spec_is_never_mixed() -> None:
    recs = [make_record(impl="keras-jax"), make_record(impl="jax"),
            make_record(impl="jax", dataset_hash="zzz"),
            make_record(impl="jax", epochs=12),
            make_record(impl="jax", layers=(64, 32)),
            make_record(impl="jax", learning_rate=0.1),
            make_record(impl="jax", jit="off")]
    grouped = group_records(recs)
    assert len(grouped.groups) == 6
    for _, runs in grouped.sorted_groups():
        keys = {(r.key.dataset_hash, r.key.spec) for r in runs}
        assert len(keys) == 1  # one dataset hash and one shared spec per group
    base = next(k for k, runs in grouped.groups.items() if len(runs) == 2)
    other = next(k for k in grouped.groups if k.dataset_hash == "zzz")
    assert differing_fields(base, other) == ["dataset_hash"]
    lr = next(k for k in grouped.groups if k.spec_dict()["learning_rate"] == 0.1)
    assert differing_fields(base, lr) == ["spec.learning_rate"]


def test_unfinished_and_foreign_records_are_left_out_with_reasons() -> None:
    recs = [make_record(impl="keras-jax"), make_record(impl="jax", status="failed"),
            make_record(impl="jax", status="timed out"),
            {**make_record(impl="torch"), "schema_version": 99},
            {"run_id": "r1", "kind": "retrieval", "backend": "faiss"}]
    grouped = group_records(recs)
    assert sum(len(r) for r in grouped.groups.values()) == 1
    assert grouped.left_out["status 'failed' (the run did not finish)"] == 1
    assert grouped.left_out["status 'timed out' (the run did not finish)"] == 1
    assert grouped.left_out["schema_version 99 (unknown)"] == 1
    assert [r["run_id"] for r in grouped.other_kinds["retrieval"]] == ["r1"]


def test_group_order_and_run_order_do_not_depend_on_append_order() -> None:
    recs = [make_record(impl=i, seed=s, layers=layers) for i in ("torch", "keras-jax")
            for s in (1, 0) for layers in ((64, 32), (32,))]
    a = group_records(recs).sorted_groups()
    b = group_records(list(reversed(recs))).sorted_groups()
    assert [(k, [r.run_id for r in rs]) for k, rs in a] == \
        [(k, [r.run_id for r in rs]) for k, rs in b]
    assert [k.layer_sizes for k, _ in a] == [(32,), (64, 32)]
