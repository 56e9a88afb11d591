"""Shared-start parity: one set of initial weights, one epoch of identical batches, everywhere.

numpy only (imported by the parent test and by each child). The run is one
epoch of 11 steps on the tiny dataset: 10 full batches of 190 rows and a short
last batch of 10, so the short-batch path of every implementation is covered.

Tolerances (float32 everywhere; frameworks reduce in different orders, and
XLA, oneDNN and ATen fuse differently, so equal maths gives results that
differ by a few ulps per op):
- step losses: rtol 1e-5. The step-0 loss is a forward pass only (~1e-7
  apart); later steps add Adagrad updates of weights that differ by ulps, a
  few ulps more per step. 1e-5 is ~100 float32 ulps: far above that noise,
  far below any semantic difference (a wrong eps placement, a missed mask or
  an accumulator difference moves the loss by 1e-4 or more within 11 steps).
- final weights: |a - b| <= 1e-5 * (1 + |b|) elementwise, i.e. ~100 ulps of
  weights of size ~0.05-1 after 11 steps (~1e-7 per-step update noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pytest

from bench.data.dataset import Dataset
from bench.spec import RunSpec
from bench.weights import Weights, init_weights
from tests.fixtures import make_dataset

REFERENCE = "jax"  # every implementation is compared with native JAX
# The reference's child also writes this: keras-tf's Adagrad rule emulated in JAX
# (see tf_adagrad_emulation.py for why keras-tf differs from the others).
TF_EMULATION = "jax-tf-indexed-slices"
LOSS_RTOL = 1e-5
WEIGHT_TOL = 1e-5
STEPS = 11


def parity_spec(name: str) -> RunSpec:
    return RunSpec(impl=name, layer_sizes=(64, 32), batch_size=190, top_k=10, device="cpu")


def parity_dataset() -> Dataset:
    return make_dataset(n_train=STEPS * 190 - 180, n_test=500, seed=3)  # 10 x 190 + 10


def initial_weights() -> Weights:
    spec = parity_spec(REFERENCE)
    return init_weights(parity_dataset().vocab, spec.layer_sizes, spec.embedding_dim, seed=11)


def save_result(path: Path, losses: np.ndarray, weights: Weights) -> None:
    np.savez(path, __losses__=np.asarray(losses, np.float64), **weights)


def load_result(path: Path) -> tuple[np.ndarray, Weights]:
    with np.load(path) as f:
        weights = {k: f[k] for k in f.files if k != "__losses__"}
        return f["__losses__"], weights


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


def loss_mismatch(losses: np.ndarray, reference: np.ndarray) -> str | None:
    """None when the per-step losses agree within LOSS_RTOL, else a description."""
    if losses.shape != reference.shape:
        return f"loss shapes {losses.shape} vs {reference.shape}"
    rel = np.abs(losses - reference) / np.abs(reference)
    if np.all(rel <= LOSS_RTOL):
        return None
    first = int(np.argmax(rel > LOSS_RTOL))
    return f"step losses differ from step {first}: max rel {rel.max():.2e}, per step {rel}"


def weight_mismatch(weights: Weights, reference: Weights) -> str | None:
    """None when every final weight agrees within WEIGHT_TOL, else the worst offenders."""
    bad = []
    for name, ref in reference.items():
        excess = np.abs(weights[name] - ref) / (1.0 + np.abs(ref))
        if excess.max() > WEIGHT_TOL:
            bad.append(f"{name}: max {excess.max():.2e}")
    return "; ".join(bad) or None
