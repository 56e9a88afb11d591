"""Conformance checks of ONE implementation, run in a child process (imports its framework).

Not collected by the main pytest run (the file name does not start with
test_): tests/impls/test_conformance.py runs it per registry entry as

    DEEPREC_IMPL=<name> <entry.env> python -m pytest tests/impls/impl_checks.py

With DEEPREC_PARITY_WEIGHTS and DEEPREC_PARITY_OUT set, `test_parity_dump`
also trains the shared-start parity run and writes its losses and weights.

One instance serves every check (built once: torch.compile compiles per
instance, ~30 s here); each check starts by importing fresh weights, which
also resets the optimizer, and the round-trip check proves that reset.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench import registry
from bench.contract import RetrievalImpl
from bench.metrics import top_k_accuracy, top_k_indices
from bench.spec import RunSpec
from bench.weights import Weights, init_weights, load_weights, weight_shapes
from tests.impls import parity

NAME = os.environ.get("DEEPREC_IMPL", "")
SPEC = parity.parity_spec(NAME)  # (64, 32), batch 190, top 10, cpu
DATA = parity.parity_dataset()  # 11 steps: 10 of 190 rows and a short one of 10
K = SPEC.top_k  # the tiny dataset has 80 candidates


@pytest.fixture(scope="module")
def impl_cls() -> type[RetrievalImpl]:
    if not NAME:
        pytest.fail("DEEPREC_IMPL is not set: run this file through test_conformance.py")
    return registry.get(NAME).load()


@pytest.fixture(scope="module")
def shared(impl_cls: type[RetrievalImpl]) -> RetrievalImpl:
    return impl_cls(SPEC, DATA, init_weights(DATA.vocab, SPEC.layer_sizes, SPEC.embedding_dim, 0))


def start_weights(seed: int = 0) -> Weights:
    return init_weights(DATA.vocab, SPEC.layer_sizes, SPEC.embedding_dim, seed)


@pytest.fixture()
def impl(shared: RetrievalImpl) -> RetrievalImpl:
    """The shared instance, restarted from the seed-0 weights with a fresh optimizer."""
    shared.import_weights(start_weights())
    return shared


def test_shapes_and_dtypes(impl: RetrievalImpl) -> None:
    out = SPEC.layer_sizes[-1]
    assert impl.candidate_embeddings().shape == (DATA.num_candidates, out)
    assert impl.candidate_embeddings().dtype == np.float32
    assert impl.query_embeddings("train").shape == (len(DATA.train), out)
    assert impl.query_embeddings("test").shape == (len(DATA.test), out)
    losses = impl.train_epoch(max_steps=3)
    assert losses.shape == (3,) and losses.dtype == np.float64
    assert impl.train_epoch().shape == (parity.STEPS,)
    impl.refresh_candidates()
    q = impl.to_device(impl.query_embeddings("test")[:7])
    top = impl.to_numpy(impl.retrieve(q, K))
    assert top.shape == (7, K)
    assert isinstance(impl.versions(), dict) and impl.versions()
    assert isinstance(impl.device_name(), str) and impl.device_name()
    assert isinstance(impl.resolved_options(), dict)


def test_loss_falls(impl: RetrievalImpl) -> None:
    means = [float(impl.train_epoch().mean()) for _ in range(4)]
    assert np.all(np.isfinite(means))
    assert means[-1] < 0.7 * means[0], means


def test_compile_ahead_keeps_the_trajectory(impl: RetrievalImpl) -> None:
    """Two epochs from one start, before and after compile_ahead: the same losses, bit for bit.

    Only where it compiles something: an implementation that returns None changed
    nothing, and keras-tf is not bit-reproducible run to run (3e-8 apart) anyway.
    """
    before = [impl.train_epoch() for _ in range(2)]
    impl.import_weights(start_weights())
    method = impl.compile_ahead()
    if method is None:
        return
    assert isinstance(method, str) and method
    after = [impl.train_epoch() for _ in range(2)]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_retrieve_matches_numpy(impl: RetrievalImpl) -> None:
    impl.train_epoch()
    impl.refresh_candidates()
    queries = impl.query_embeddings("test")[:64]
    cands = impl.candidate_embeddings()
    got = impl.to_numpy(impl.retrieve(impl.to_device(queries), K))
    want = top_k_indices(queries, cands, K)
    scores = queries @ cands.T
    for q in range(len(queries)):
        assert len(set(got[q])) == K
        # Sets must agree unless the k-th and (k+1)-th scores (nearly) tie.
        ranked = np.sort(scores[q])[::-1]
        if ranked[K - 1] - ranked[K] > 1e-5 * max(1.0, abs(ranked[K - 1])):
            assert set(got[q]) == set(want[q]), q
        # Either way, the retrieved scores are the top scores, best first.
        np.testing.assert_allclose(scores[q, got[q]], ranked[:K], rtol=1e-5, atol=1e-6)


def test_weights_round_trip(impl: RetrievalImpl) -> None:
    first = impl.train_epoch()
    other = start_weights(seed=7)
    impl.import_weights(other)
    exported = impl.export_weights()
    assert set(exported) == set(weight_shapes(DATA.vocab, SPEC.layer_sizes, SPEC.embedding_dim))
    for name, w in other.items():
        assert exported[name].dtype == np.float32
        np.testing.assert_array_equal(exported[name], w, err_msg=name)
    # Importing resets the optimizer: training from `start` again repeats the first epoch.
    impl.import_weights(start_weights())
    np.testing.assert_allclose(impl.train_epoch(), first, rtol=1e-6)


def test_evaluate_matches_numpy(impl: RetrievalImpl) -> None:
    for _ in range(2):
        impl.train_epoch()
    impl.refresh_candidates()
    accuracy = impl.evaluate()
    top = top_k_indices(impl.query_embeddings("test"), impl.candidate_embeddings(), K)
    weight = DATA.test.five_star().astype(np.float32)
    expected = top_k_accuracy(
        top, DATA.candidates["movie_id"], DATA.test.features["movie_id"], weight
    )
    assert 0.0 < expected < 1.0  # the check means something only away from the ends
    # One 5-star row's worth of slack: a near-tie at the k-th place may flip one row.
    assert abs(accuracy - expected) <= 1.0 / weight.sum() + 1e-6, (accuracy, expected)


def test_gpu_request(impl_cls: type[RetrievalImpl]) -> None:
    spec = RunSpec(impl=NAME, layer_sizes=(32,), batch_size=190, top_k=K, device="gpu")
    weights = init_weights(DATA.vocab, spec.layer_sizes, spec.embedding_dim, 0)
    try:
        impl = impl_cls(spec, DATA, weights)
    except RuntimeError as exc:  # no GPU here: a clear error, naming the request
        assert "gpu" in str(exc).lower()
    else:
        assert impl.device_name() != "cpu"


@pytest.mark.skipif(
    not os.environ.get("DEEPREC_PARITY_OUT"), reason="parity run only when the parent asks"
)
def test_parity_dump(shared: RetrievalImpl) -> None:
    """Train the shared-start parity run (one epoch) and save what the parent compares."""
    shared.import_weights(load_weights(Path(os.environ["DEEPREC_PARITY_WEIGHTS"])))
    losses = shared.train_epoch()
    out = Path(os.environ["DEEPREC_PARITY_OUT"])
    parity.save_result(out, losses, shared.export_weights())
    if NAME == parity.REFERENCE:  # a JAX process: also run the keras-tf emulation
        from tests.impls import tf_adagrad_emulation

        weights = load_weights(Path(os.environ["DEEPREC_PARITY_WEIGHTS"]))
        emulated = tf_adagrad_emulation.train_one_epoch(
            weights, DATA.train, SPEC.batch_size, SPEC.learning_rate
        )
        parity.save_result(parity.emulation_file(out), *emulated)


def test_keras_compiles_once(shared: RetrievalImpl) -> None:
    """Keras reuses its compiled train function across train_epoch calls (no retrace).

    Python code inside a compiled step runs only while tracing, so counting
    compute_loss calls counts traces: after the first epoch (full batches and
    the short last one traced) a further epoch must not trace again.
    """
    if not registry.get(NAME).target.startswith("impls.keras_model"):
        pytest.skip("Keras implementations only")
    if shared.resolved_options()["train_step"] == "eager":
        pytest.skip("eager training (jit_compile resolved to False): nothing is traced")
    model = shared.model  # type: ignore[attr-defined]
    shared.import_weights(start_weights())
    shared.train_epoch()
    compute_loss = model.compute_loss
    calls = []

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return compute_loss(*args, **kwargs)

    model.compute_loss = counting
    try:
        shared.train_epoch()
        shared.train_epoch()
    finally:
        del model.compute_loss
    assert calls == [], f"{len(calls)} traces after the first epoch"
