"""Shared-start parity: every implementation against native JAX, same weights, same batches.

See tests/impls/parity.py for the run and the reasoning behind the tolerances.
"""

from __future__ import annotations

import pytest

from tests.impls import parity
from tests.impls.children import Children, installed_names

# keras-tf accumulates Adagrad's squared gradients per occurrence of an embedding
# id (TF IndexedSlices), the others per row: a real semantic difference, proven by
# test_keras_tf_matches_indexed_slices_emulation. strict: if Keras changes it, we hear.
_KERAS_TF_XFAIL = pytest.mark.xfail(
    strict=True,
    reason="keras-tf: Adagrad accumulates squared embedding gradients per occurrence "
    "(tf.IndexedSlices), see tests/impls/tf_adagrad_emulation.py",
)
OTHERS = [
    pytest.param(n, marks=_KERAS_TF_XFAIL) if n == "keras-tf" else n
    for n in installed_names()
    if n != parity.REFERENCE
]


@pytest.fixture(scope="module")
def reference(children: Children) -> parity.ParityRun:
    if parity.REFERENCE not in installed_names():
        pytest.skip(f"{parity.REFERENCE} (the parity reference) is not installed")
    return parity.load_run(children.result(parity.REFERENCE))


@pytest.mark.parametrize("name", OTHERS)
def test_step_losses_match_reference(
    name: str, children: Children, reference: parity.ParityRun
) -> None:
    run = parity.load_run(children.result(name))
    problem = parity.loss_mismatch(run.losses, reference.losses)
    assert problem is None, f"{name} vs {parity.REFERENCE}: {problem}"


@pytest.mark.parametrize("name", OTHERS)
def test_final_weights_match_reference(
    name: str, children: Children, reference: parity.ParityRun
) -> None:
    run = parity.load_run(children.result(name))
    problem = parity.weight_mismatch(run.weights, reference.weights)
    assert problem is None, f"{name} vs {parity.REFERENCE}: {problem}"


def test_step_zero_is_the_same_forward_pass(children: Children) -> None:
    """Before any update, every implementation computes the same loss from the same weights."""
    runs = {n: parity.load_run(children.result(n)) for n in installed_names()}
    first = {n: r.losses[0] for n, r in runs.items()}
    spread = max(first.values()) - min(first.values())
    assert spread <= 1e-6 * max(first.values()), first


@pytest.mark.skipif("keras-tf" not in installed_names(), reason="keras-tf not installed")
def test_keras_tf_matches_indexed_slices_emulation(
    children: Children, reference: parity.ParityRun
) -> None:
    """keras-tf equals native JAX with TF's per-occurrence accumulator rule, and only that."""
    ref = children.result(parity.REFERENCE)
    emulated = parity.load_run(ref, parity.emulation_file(ref.parity_file))
    keras_tf = parity.load_run(children.result("keras-tf"))
    assert parity.loss_mismatch(keras_tf.losses, emulated.losses) is None
    assert parity.weight_mismatch(keras_tf.weights, emulated.weights) is None
    # ...and the rule matters: the emulation is measurably away from the reference.
    assert parity.loss_mismatch(emulated.losses, reference.losses) is not None
