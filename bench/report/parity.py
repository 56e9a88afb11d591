"""Parity verdicts: is an implementation's final accuracy equivalent to the baseline's?

Two one-sided tests (TOST, alpha 0.05) on final top-100 accuracy over seeds,
against a declared margin, combined with the ordinary two-sided test of no
difference (alpha 0.05):

- `equivalent`: the 90% interval of the difference lies inside +-margin
  (both one-sided tests reject "the difference is at least the margin").
- `different`: the 95% interval excludes zero *and* the estimated difference
  is at least the margin: a difference that is both real and large enough to
  matter. A real but smaller-than-margin difference is not called different.
- `inconclusive (need more seeds)`: neither, including fewer than 2 seeds a side.

Seeds are paired when both sides ran the same seeds and both start from the
harness's shared initial weights (`impl_info.shared_start`, true when absent):
then one seed means the same weights, and, within one comparable group, the same
split, so per-seed differences remove that shared share of the spread. An
implementation with its own initialisers and split (keras-reference) shares
nothing with another's seed of the same number: it is compared by Welch's test,
as are sides that ran different seeds.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from bench.report.published import PUBLISHED_REFERENCE_ACCURACY
from bench.report.summary import Curve, ImplSummary
from bench.spec import SPLIT_SEED
from bench.stats import Comparison, compare_means, t_ppf

EQUIVALENT = "equivalent"
DIFFERENT = "different"
INCONCLUSIVE = "inconclusive (need more seeds)"
# Two programs that split the data each their own way, both on a fixed split (spec.split
# "cache" or N: e.g. numpy's permutation against tf.data's shuffle with the same seed):
# their gap holds the two test sets' difference, which no number of seeds averages out.
SPLIT_CONFOUNDED = "not compared (each on its own fixed split: run with --split seed)"
ALPHA = 0.05
DEFAULT_BASELINE = "keras-jax"  # the reference program runs Keras on JAX
DEFAULT_MARGIN = 0.01  # absolute top-100 accuracy; justified in MARGIN_RATIONALE

_PUBLISHED = [v for _, v in sorted(PUBLISHED_REFERENCE_ACCURACY.items(), key=lambda kv: len(kv[0]))]
MARGIN_RATIONALE = (
    "The margin is {margin:g} absolute top-100 accuracy. The reference program's three "
    f"depths differ by at most {max(_PUBLISHED) - min(_PUBLISHED):.3f} "
    f"({', '.join(f'{v:.3f}' for v in _PUBLISHED)}), so a gap under 0.01 is smaller "
    "than what changing the model's depth does: no reader would pick a framework for it. "
    "The baseline's own seed-to-seed standard deviation is shown next to each verdict so "
    "the margin can be judged against the noise it has to see through."
)


@dataclass(frozen=True)
class Verdict:
    """One implementation against the baseline in one group."""

    impl: str
    baseline: str
    comparison: Comparison
    margin: float
    verdict: str
    p_tost: float
    p_diff: float
    ci90: tuple[float, float]
    baseline_sd: float  # seed-to-seed SD of the baseline's final accuracy
    separation: str  # where the curves part ("" unless different)
    seeds_needed: int | None  # inconclusive only: seeds per side that would likely settle it


def classify(cmp: Comparison, margin: float, alpha: float = ALPHA) -> str:
    """The verdict for one comparison (see the module docstring)."""
    if cmp.n_a < 2 or cmp.n_b < 2 or math.isnan(cmp.diff):
        return INCONCLUSIVE
    p_tost, p_diff = cmp.tost_p(margin), cmp.difference_p()
    if not math.isnan(p_tost) and p_tost < alpha:
        return EQUIVALENT
    if not math.isnan(p_diff) and p_diff < alpha and abs(cmp.diff) >= margin:
        return DIFFERENT
    return INCONCLUSIVE


def seeds_needed(cmp: Comparison, margin: float, limit: int = 200) -> int | None:
    """Seeds per side at which TOST would pass if the observed difference and spread held.

    None when the observed difference is already at least the margin (more seeds
    cannot make it equivalent), when the spread is unknown, or beyond `limit`.
    """
    gap = margin - abs(cmp.diff)
    if math.isnan(cmp.se) or math.isnan(cmp.diff) or gap <= 0:
        return None
    if cmp.design == "paired":
        sd, n0 = cmp.se * math.sqrt(cmp.n_a), cmp.n_a  # SD of the per-seed differences
    else:
        sd, n0 = cmp.se / math.sqrt(1 / cmp.n_a + 1 / cmp.n_b), max(cmp.n_a, cmp.n_b)
    for n in range(max(n0, 2), limit + 1):
        df, se = (n - 1, sd / math.sqrt(n)) if cmp.design == "paired" else \
            (2 * n - 2, sd * math.sqrt(2 / n))
        if t_ppf(1 - ALPHA, df) * se < gap:
            return n
    return None


def compare_seeds(a: dict[int, float], b: dict[int, float], shared_start: bool = True
                  ) -> Comparison:
    """Paired on seeds when both sides ran exactly the same seeds from the shared
    initial weights (`shared_start`: both sides do), else Welch."""
    if shared_start and sorted(a) == sorted(b) and len(a) >= 2:
        seeds = sorted(a)
        return compare_means([a[s] for s in seeds], [b[s] for s in seeds], paired=True)
    return compare_means(list(a.values()), list(b.values()))


def _interval_rows(c: Curve) -> tuple[np.ndarray, np.ndarray]:
    """Per x: (low, high) of the seed values' 95% t interval, or min-max with < 3 seeds."""
    v = c.values
    n = np.sum(~np.isnan(v), axis=0)
    with warnings.catch_warnings():  # an all-nan column (a point no seed has) stays nan
        warnings.simplefilter("ignore", RuntimeWarning)
        if v.shape[0] >= 3:
            mean, sd = np.nanmean(v, axis=0), np.nanstd(v, axis=0, ddof=1)
            q = np.array([t_ppf(0.975, k - 1) if k > 1 else math.nan for k in n])
            half = q * sd / np.sqrt(np.maximum(n, 1))
            return mean - half, mean + half
        return np.nanmin(v, axis=0), np.nanmax(v, axis=0)


def first_separation(a: Curve, b: Curve) -> int | None:
    """First x (epoch) present in both where the two seed intervals do not overlap."""
    if not a.x or not b.x:
        return None
    lo_a, hi_a = _interval_rows(a)
    lo_b, hi_b = _interval_rows(b)
    for x in sorted(set(a.x) & set(b.x)):
        i, j = a.x.index(x), b.x.index(x)
        if hi_a[i] < lo_b[j] or hi_b[j] < lo_a[i]:
            return x
    return None


def _separation_text(s: ImplSummary, base: ImplSummary) -> str:
    acc = first_separation(s.accuracy_curve(), base.accuracy_curve())
    loss = first_separation(s.loss_curve(), base.loss_curve())
    parts = [f"accuracy intervals part at epoch {acc}" if acc is not None
             else "accuracy intervals overlap at every validation epoch",
             f"epoch loss leaves the seed spread at epoch {loss}" if loss is not None
             else "epoch loss stays within the seed spread"]
    return "; ".join(parts)


def verdict(s: ImplSummary, base: ImplSummary, margin: float = DEFAULT_MARGIN,
            split: str = SPLIT_SEED) -> Verdict:
    """TOST verdict for `s` against the baseline `base` in the same group (spec.split `split`)."""
    shared = s.shared_start and base.shared_start
    cmp = compare_seeds(s.seed_accuracy, base.seed_accuracy, shared_start=shared)
    # Only cache-fed implementations share a fixed split; others draw their own.
    result = classify(cmp, margin) if shared or split == SPLIT_SEED else SPLIT_CONFOUNDED
    base_vals = list(base.seed_accuracy.values())
    sd = float(np.std(base_vals, ddof=1)) if len(base_vals) > 1 else math.nan
    return Verdict(
        impl=s.impl, baseline=base.impl, comparison=cmp, margin=margin, verdict=result,
        p_tost=cmp.tost_p(margin), p_diff=cmp.difference_p(), ci90=cmp.interval(0.90),
        baseline_sd=sd,
        separation=_separation_text(s, base) if result == DIFFERENT else "",
        seeds_needed=seeds_needed(cmp, margin) if result == INCONCLUSIVE else None,
    )
