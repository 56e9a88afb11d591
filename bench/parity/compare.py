"""Shared-start parity: the comparison of two runs that started from the same weights.

numpy only: used by `python -m bench parity` (bench/parity/runner.py) and by the
parity tests (tests/impls/test_parity.py), so both judge with one rule.

Tolerances (float32 everywhere; frameworks reduce in different orders, and
XLA, oneDNN and ATen fuse differently, so equal maths gives results that
differ by a few ulps per op):
- step losses: |a - b| <= LOSS_RTOL * |b| at every step. The step-0 loss is a
  forward pass only (~1e-7 apart); later steps add Adagrad updates of weights
  that differ by ulps, a few ulps more per step. 1e-5 is ~100 float32 ulps:
  far above that noise, far below any semantic difference (a wrong eps
  placement, a missed mask or an accumulator difference moves the loss by
  1e-4 or more within ten steps).
- final weights: |a - b| <= WEIGHT_TOL * (1 + |b|) elementwise, i.e. ~100 ulps
  of weights of size ~0.05-1 (~1e-7 per-step update noise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.store import atomic_write
from bench.weights import Weights

LOSS_RTOL = 1e-5
WEIGHT_TOL = 1e-5
EQUIVALENT = "equivalent"
DIFFERENT = "different"
LOSS_RULE = f"|a - b| <= {LOSS_RTOL:g} * |b| at every step (b: the baseline's loss)"
WEIGHT_RULE = f"|a - b| <= {WEIGHT_TOL:g} * (1 + |b|) for every final weight"
_LOSSES = "__losses__"


def save_result(path: Path, losses: np.ndarray, weights: Weights) -> None:
    """Write per-step losses and final weights to `path` (.npz) atomically."""
    arrays: dict[str, Any] = {_LOSSES: np.asarray(losses, np.float64), **weights}
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def load_result(path: Path) -> tuple[np.ndarray, Weights]:
    """The (losses, weights) that `save_result` wrote."""
    with np.load(path) as f:
        weights = {k: f[k] for k in f.files if k != _LOSSES}
        return f[_LOSSES], weights


def _relative_loss_gaps(losses: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.abs(losses - reference) / np.abs(reference)


def loss_mismatch(losses: np.ndarray, reference: np.ndarray) -> str | None:
    """None when the per-step losses agree within LOSS_RTOL, else a description."""
    if losses.shape != reference.shape:
        return f"loss shapes {losses.shape} vs {reference.shape}"
    rel = _relative_loss_gaps(losses, reference)
    if np.all(rel <= LOSS_RTOL):
        return None
    first = int(np.argmax(rel > LOSS_RTOL))
    return f"step losses differ from step {first}: max rel {rel.max():.2e}, per step {rel}"


def _weight_excess(weights: Weights, reference: Weights) -> dict[str, float]:
    """Per weight name, max |a - b| / (1 + |b|); missing or misshapen names are +inf."""
    out = {}
    for name, ref in reference.items():
        got = weights.get(name)
        if got is None or got.shape != ref.shape:
            out[name] = float("inf")
        else:
            out[name] = float((np.abs(got - ref) / (1.0 + np.abs(ref))).max())
    return out


def weight_mismatch(weights: Weights, reference: Weights) -> str | None:
    """None when every final weight agrees within WEIGHT_TOL, else the worst offenders."""
    bad = [f"{n}: max {e:.2e}" for n, e in _weight_excess(weights, reference).items()
           if not e <= WEIGHT_TOL]
    return "; ".join(bad) or None


def compare(
    impl: str, baseline: str, run: tuple[np.ndarray, Weights],
    reference: tuple[np.ndarray, Weights], note: str = "",
) -> dict[str, Any]:
    """One pair of bench/report/shared_start.py's file: `impl`'s run against `baseline`'s.

    Args:
        impl, baseline: the implementations' names.
        run, reference: (per-step losses, final weights) of each.
        note: why a difference is expected, when it is (shown in the report).
    """
    (losses, weights), (ref_losses, ref_weights) = run, reference
    loss_problem = loss_mismatch(losses, ref_losses)
    weight_problem = weight_mismatch(weights, ref_weights)
    same_shape = losses.shape == ref_losses.shape
    first = None
    if same_shape and loss_problem is not None:
        first = int(np.argmax(_relative_loss_gaps(losses, ref_losses) > LOSS_RTOL))
    excess = _weight_excess(weights, ref_weights)
    worst = max(excess, key=lambda n: excess[n]) if excess else None
    verdict = EQUIVALENT if loss_problem is None and weight_problem is None else DIFFERENT
    problems = []  # one line each: the report shows the note in a table cell
    if loss_problem is not None:
        problems.append(f"losses beyond tolerance from step {first}, max rel "
                        f"{_relative_loss_gaps(losses, ref_losses).max():.1e}" if same_shape
                        else loss_problem)
    if weight_problem is not None and worst is not None:
        problems.append(f"worst weight {worst} ({excess[worst]:.1e} of 1 + |b|)")
    return {
        "impl": impl, "baseline": baseline, "verdict": verdict,
        "max_abs_loss_diff": float(np.abs(losses - ref_losses).max()) if same_shape else None,
        # The rule is relative per step; the tightest absolute bound it gives is shown.
        "loss_tolerance": float(LOSS_RTOL * np.abs(ref_losses).min()),
        "first_step_beyond_tolerance": first,
        "max_abs_weight_diff": _max_abs_weight_diff(weights, ref_weights),
        "weight_tolerance": WEIGHT_TOL,  # at |b| = 0; grows as WEIGHT_TOL * (1 + |b|)
        "worst_weight": worst,
        "note": "; ".join(filter(None, [note, *problems])),
    }


def _max_abs_weight_diff(weights: Weights, reference: Weights) -> float | None:
    try:
        return max(float(np.abs(weights[n] - r).max()) for n, r in reference.items())
    except (KeyError, ValueError):
        return None  # a missing or misshapen weight: the verdict already says different
