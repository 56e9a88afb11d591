"""`bench run` at scale: the step and evaluation caps, the memory figures, the embedding export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.report.runs import group_key
from bench.run import export
from bench.spec import RunSpec, memory_estimate, memory_need
from tests.fixtures import make_dataset
from tests.harness.conftest import bench_run, fake_args, read_lines

ARCHIVED = "runs-3-seeds-cache-split/records.jsonl"  # the 3-seed study on the cache's split


def test_caps_at_their_default_leave_old_hashes_and_keys_as_they_were() -> None:
    spec = RunSpec(impl="jax")
    assert "steps_per_epoch" not in spec.to_dict() and "eval_rows" not in spec.to_dict()
    # The committed study's records were hashed before the caps existed.
    study = Path(__file__).resolve().parents[2] / "results" / "archive" / ARCHIVED
    for line in study.read_text().splitlines()[:5]:
        old = json.loads(line)
        assert RunSpec.from_dict(old["spec"]).spec_hash() == old["spec_hash"]
    capped = RunSpec(impl="jax", steps_per_epoch=10)
    assert capped.to_dict()["steps_per_epoch"] == 10 and capped.spec_hash() != spec.spec_hash()
    assert RunSpec.from_dict(capped.to_dict()) == capped
    rec = {"spec": spec.to_dict(), "dataset": {"name": "ml-100k"}}
    other = {"spec": capped.to_dict(), "dataset": {"name": "ml-100k"}}
    assert group_key(rec) != group_key(other)  # capped runs are compared only with each other


def test_memory_need_is_the_one_estimate_check_fits_uses() -> None:
    vocab = make_dataset().vocab
    need = memory_need((32,), 32, 1000, vocab, data_bytes=2**20)
    assert need.optimizer == need.params == need.gradients > 0  # Adagrad: one per parameter
    assert memory_estimate((32,), 32, 1000, vocab) == need.total - need.data
    figures = need.figures()
    assert figures["need_mb"] == pytest.approx(2 * need.params / 2**20 + 1.0)


def test_a_capped_run_records_its_caps_memory_and_embeddings(results: Path,
                                                              tmp_path: Path) -> None:
    emb = tmp_path / "emb"
    extra = ("--steps-per-epoch", "2", "--eval-rows", "300", "--save-embeddings", str(emb))
    out = bench_run(*fake_args("FakeImpl", epochs=2, extra=extra), results=results)
    assert out.returncode == 0, out.stderr
    (rec,) = read_lines(results)
    f = rec["figures"]
    assert rec["spec"]["steps_per_epoch"] == 2 and rec["spec"]["eval_rows"] == 300
    assert f["train_steps_per_epoch"] == 2
    assert f["train_examples_per_s"] == pytest.approx(1000 / f["train_epoch_s"])
    for name in ("need_params_mb", "need_optimizer_mb", "need_data_mb", "need_mb",
                 "peak_rss_train_mb", "rss_start_mb", "rss_after_load_mb",
                 "rss_after_import_mb", "peak_rss_mb"):
        assert f[name] > 0, name
    assert f["num_users"] > 0 and f["num_movies"] > 0
    folder = emb / rec["run_id"]
    meta = json.loads((folder / export.META_FILE).read_text())
    data = rec["dataset"]
    assert meta == {"dataset": data["name"], "content_hash": data["content_hash"],
                    "impl": rec["impl"], "spec_hash": rec["spec_hash"], "run_id": rec["run_id"],
                    "top_k": 100}
    queries = np.load(folder / export.QUERIES_FILE)
    candidates = np.load(folder / export.CANDIDATES_FILE)
    assert queries.dtype == candidates.dtype == np.float32
    assert queries.shape[0] == 300 and queries.shape[1] == candidates.shape[1]
    assert [p.name for p in emb.iterdir()] == [rec["run_id"]]  # no temporary folder left


def test_an_unwritable_embeddings_folder_is_refused_before_anything_runs(
        results: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    extra = ("--save-embeddings", str(blocker / "sub"))
    out = bench_run(*fake_args("FakeImpl", epochs=1, extra=extra), results=results)
    assert out.returncode == 2 and "--save-embeddings" in out.stderr
    assert not results.exists()
