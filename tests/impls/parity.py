"""Shared-start parity: one set of initial weights, one epoch of identical batches, everywhere.

numpy only (imported by the parent test and by each child). The run is one
epoch of 11 steps on the tiny dataset: 10 full batches of 190 rows and a short
last batch of 10, so the short-batch path of every implementation is covered.

Tolerances and the comparison itself: bench/parity/compare.py (one rule for these
tests and `python -m bench parity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pytest

from bench.data.dataset import Dataset
from bench.parity.compare import (  # noqa: F401 - re-exported for the tests
    LOSS_RTOL,
    WEIGHT_TOL,
    load_result,
    loss_mismatch,
    save_result,
    weight_mismatch,
)
from bench.spec import RunSpec
from bench.weights import Weights, init_weights
from tests.fixtures import make_dataset

REFERENCE = "jax"  # every implementation is compared with native JAX
# The reference's child also writes this: keras-tf's Adagrad rule emulated in JAX
# (see tf_adagrad_emulation.py for why keras-tf differs from the others).
TF_EMULATION = "jax-tf-indexed-slices"
STEPS = 11


def parity_spec(name: str) -> RunSpec:
    return RunSpec(impl=name, layer_sizes=(64, 32), batch_size=190, top_k=10, device="cpu")


def parity_dataset() -> Dataset:
    return make_dataset(n_train=STEPS * 190 - 180, n_test=500, seed=3)  # 10 x 190 + 10


def initial_weights() -> Weights:
    spec = parity_spec(REFERENCE)
    return init_weights(parity_dataset().vocab, spec.layer_sizes, spec.embedding_dim, seed=11)


class _ChildResult(Protocol):
    name: str
    returncode: int
    parity_file: Path

    def tail(self, chars: int = 6000) -> str: ...


@dataclass(frozen=True)
class ParityRun:
    losses: np.ndarray  # (STEPS,) per-step losses
    weights: Weights  # final weights, neutral layout


def emulation_file(reference_file: Path) -> Path:
    """Where the reference's child writes the keras-tf emulation, beside its own result."""
    return reference_file.with_name(f"{TF_EMULATION}.npz")


def load_run(result: _ChildResult, path: Path | None = None) -> ParityRun:
    """The parity result a child wrote (or `path` it wrote), else a failure showing its output."""
    path = path or result.parity_file
    if not path.exists():
        pytest.fail(
            f"{result.name} wrote no parity result (child exit {result.returncode}):\n"
            f"{result.tail()}"
        )
    losses, weights = load_result(path)
    return ParityRun(losses, weights)
