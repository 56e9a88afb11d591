"""Sparse embedding updates are the dense update: `jax-sparse` tracks `jax`, `torch-sparse` `torch`.

Shared start at MovieLens-100k scale on synthetic data (ml-100k's vocabulary,
80,500 training ratings, batch 1000): two epochs of 81 steps (the last one
short), so every user and most movies are updated many times over and a
missed or doubled row update would show. Each
framework's pair trains in one child process (`python -m
tests.impls.test_sparse DENSE SPARSE FOLDER`, the registry entry's environment),
both frameworks at once; the comparison is `bench parity`'s
(bench/parity/compare.py): per-step losses within LOSS_RTOL, final weights
within WEIGHT_TOL.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench import registry
from bench.data.dataset import Vocabulary
from bench.parity.compare import load_result, loss_mismatch, save_result, weight_mismatch
from bench.process import worker_env
from bench.spec import RunSpec
from bench.weights import init_weights
from tests.fixtures import make_dataset

ROOT = Path(__file__).resolve().parents[2]
PAIRS = {"jax": "jax-sparse", "torch": "torch-sparse"}
EPOCHS = 2
TRAIN = 80_500  # 80 full batches of 1000 and a short one of 500: both step shapes
STEPS = EPOCHS * 81
ML_100K_VOCAB = Vocabulary(  # `python -m bench data info` of the real cache
    num_users=943, num_movies=1682, num_genders=2, num_age_bins=10, num_crosses=20,
    num_occupations=17, num_title_tokens=2468, num_genres=20, title_length=16,
    max_genres_per_movie=6,
)


def _child(dense: str, sparse: str, folder: Path) -> None:
    """Train `dense` and `sparse` from one start, EPOCHS epochs each; save both runs."""
    data = make_dataset(n_train=TRAIN, n_test=200, seed=5, vocab=ML_100K_VOCAB)
    spec = RunSpec(impl=dense, layer_sizes=(64, 32), batch_size=1000, top_k=10, device="cpu")
    weights = init_weights(data.vocab, spec.layer_sizes, spec.embedding_dim, seed=13)
    for name in (dense, sparse):
        impl = registry.get(name).load()(spec, data, weights)
        losses = np.concatenate([impl.train_epoch() for _ in range(EPOCHS)])
        save_result(folder / f"{name}.npz", losses, impl.export_weights())
    _check_sparse_path(impl)


def _check_sparse_path(impl: object) -> None:
    """The sparse run took the sparse path: equal losses alone cannot tell (jax's are equal
    bit for bit), so look at what trained."""
    if impl.framework == "jax":  # type: ignore[attr-defined]
        from impls.jax_native import sparse

        assert all(f is sparse._sparse_step for f in impl._step_fns)  # type: ignore[attr-defined]
    else:
        tables = impl._sparse_opt.param_groups[0]["params"]  # type: ignore[attr-defined]
        assert all(p.grad is not None and p.grad.is_sparse for p in tables[:1])  # user table
        assert all(p.grad is None or p.grad.is_sparse for p in tables)


@dataclass
class Children:
    folder: Path  # where each child writes its runs, <name>.npz
    procs: dict[str, subprocess.Popen[str]]  # dense name -> its pair's child


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Children:
    """Both frameworks' children, started at once; each test waits for its own."""
    folder = tmp_path_factory.mktemp("sparse")
    procs = {}
    for dense, sparse in PAIRS.items():
        if registry.get(dense).installed():
            cmd = [sys.executable, "-m", "tests.impls.test_sparse", dense, sparse, str(folder)]
            procs[dense] = subprocess.Popen(
                cmd, cwd=ROOT, env=worker_env(registry.get(dense).env), text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
    return Children(folder, procs)


@pytest.mark.parametrize("dense", list(PAIRS))
def test_sparse_updates_match_dense(dense: str, children: Children) -> None:
    if dense not in children.procs:
        pytest.skip(f"{dense} is not installed")
    proc = children.procs[dense]
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-4000:]
    dense_losses, dense_weights = load_result(children.folder / f"{dense}.npz")
    losses, weights = load_result(children.folder / f"{PAIRS[dense]}.npz")
    assert len(losses) == STEPS
    assert loss_mismatch(losses, dense_losses) is None, loss_mismatch(losses, dense_losses)
    assert weight_mismatch(weights, dense_weights) is None, weight_mismatch(weights, dense_weights)
    print(f"{PAIRS[dense]} vs {dense}: {len(losses)} steps, max abs loss diff "
          f"{np.abs(losses - dense_losses).max():.2e}")


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
