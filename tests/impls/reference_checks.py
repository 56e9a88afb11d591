"""The contract checks that apply to a keras-reference implementation, in ONE child process.

Usage: python -m tests.impls.reference_checks CACHE_DIR  (with DEEPREC_IMPL and the
registry entry's env). The shared-start checks of impl_checks.py (weight import
and round trip, the parity dump, a restart from imported weights) do not apply:
it starts from Keras's own initial weights and its own split. What is checked
here, on a small synthetic dataset through its own `prepare`: shapes and dtypes
against its own targets, losses, the refused import, retrieve against numpy
outside the NaN candidate row, and its own metric against numpy's, the NaN row's
effect included as the build measured it. Prints "reference checks ok".
"""

from __future__ import annotations

import os
import sys

import numpy as np

from bench import registry
from bench.data.cache import ENV_VAR, ensure_dataset, load_dataset
from bench.metrics import top_k_accuracy, top_k_indices
from bench.spec import RunSpec

SMALL = "synthetic:users=40,movies=120,ratings=2000"
K = 10


def main(cache_dir: str) -> None:
    os.environ[ENV_VAR] = cache_dir
    name = os.environ["DEEPREC_IMPL"]
    ensure_dataset(SMALL)
    data = load_dataset(SMALL)
    cls = registry.get(name).load()
    assert cls.shared_start is False and registry.get(name).shared_start is False
    spec = RunSpec(impl=name, layer_sizes=(32,), batch_size=100, top_k=K, device="cpu",
                   dataset=SMALL)
    impl = cls(spec, cls.prepare(spec, data), {})  # weights ignored
    cand_ids, test_ids, five = impl.evaluation_targets()
    assert cand_ids.tolist() == list(range(data.vocab.num_movies + 1))  # row 0 included
    assert len(test_ids) == len(data.test) and five.dtype == bool
    assert impl.candidate_embeddings().shape == (len(cand_ids), 32)
    assert impl.candidate_embeddings().dtype == np.float32
    assert impl.query_embeddings("train").shape == (len(data.train), 32)
    assert impl.query_embeddings("test").shape == (len(test_ids), 32)
    options = impl.resolved_options()
    assert options["nan_candidate_rows"] == 1 and options["nan_candidate_row_ids"] == [0]
    try:
        impl.import_weights({})
    except NotImplementedError as exc:
        assert "shared_start" in str(exc)
    else:
        raise AssertionError("import_weights must refuse")
    losses = impl.train_epoch(max_steps=3)
    assert losses.shape == (3,) and losses.dtype == np.float64
    means = [float(impl.train_epoch().mean()) for _ in range(4)]
    assert np.all(np.isfinite(means)) and means[-1] < means[0], means
    impl.refresh_candidates()
    queries, cands = impl.query_embeddings("test"), impl.candidate_embeddings()
    _check_retrieve(impl, queries[:64], cands)
    _check_metric(impl.evaluate(), queries, cands, (cand_ids, test_ids, five),
                  options["topk_returns_nan_row"])
    print("reference checks ok", options)


def _check_retrieve(impl, queries: np.ndarray, cands: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Outside the NaN row, retrieve's rows are numpy's top scores, best first."""
    got = impl.to_numpy(impl.retrieve(impl.to_device(queries), K))
    assert got.shape == (len(queries), K)
    scores = queries @ cands.T
    for q in range(len(queries)):
        finite = [r for r in got[q] if np.isfinite(scores[q, r])]
        ranked = np.sort(scores[q][np.isfinite(scores[q])])[::-1]
        np.testing.assert_allclose(scores[q, finite], ranked[: len(finite)], rtol=1e-5, atol=1e-6)


def _check_metric(accuracy: float, queries: np.ndarray, cands: np.ndarray,
                  targets: tuple[np.ndarray, np.ndarray, np.ndarray], nan_first: bool) -> None:
    """Its metric is numpy's top-K accuracy, or top-(K-1) where the NaN row takes a slot."""
    depth = K - 1 if nan_first else K
    expected = top_k_accuracy(top_k_indices(queries, cands, depth), *targets)
    slack = 1.0 / targets[2].sum() + 1e-6  # a near-tie at the last place may flip one row
    assert abs(accuracy - expected) <= slack, (accuracy, expected, depth)


if __name__ == "__main__":
    main(sys.argv[1])
