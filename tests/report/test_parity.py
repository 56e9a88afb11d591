"""Parity verdicts: equivalent, different and inconclusive cases, and where curves part."""

from __future__ import annotations

import numpy as np
import pytest

from bench.report.parity import (
    DIFFERENT,
    EQUIVALENT,
    INCONCLUSIVE,
    classify,
    compare_seeds,
    first_separation,
    verdict,
)
from bench.report.runs import group_records
from bench.report.summary import Curve, summarize_group
from bench.stats import Comparison
from tests.report.records import study

BASE = [0.300, 0.305, 0.310, 0.302, 0.308]


def _verdicts(accs: dict[str, list[float]]) -> dict[str, str]:
    grouped = group_records(study(accs))
    (runs,) = grouped.groups.values()
    s = summarize_group(runs)
    return {name: verdict(s[name], s["keras-jax"]).verdict for name in s if name != "keras-jax"}


def test_equivalent_when_per_seed_differences_are_tiny() -> None:
    other = [a + d for a, d in zip(BASE, [0.001, -0.001, 0.0005, 0.0, -0.0005], strict=True)]
    assert _verdicts({"keras-jax": BASE, "jax": other}) == {"jax": EQUIVALENT}


def test_different_when_gap_is_real_and_beyond_margin() -> None:
    other = [a - 0.04 + d for a, d in zip(BASE, [0.001, -0.002, 0.0, 0.002, -0.001], strict=True)]
    assert _verdicts({"keras-jax": BASE, "torch": other}) == {"torch": DIFFERENT}


def test_inconclusive_with_one_seed_or_noisy_seeds() -> None:
    assert _verdicts({"keras-jax": BASE, "jax": [0.30]}) == {"jax": INCONCLUSIVE}
    noisy = [0.30, 0.34, 0.27]  # mean near the baseline, spread far wider than the margin
    assert _verdicts({"keras-jax": BASE[:3], "jax": noisy}) == {"jax": INCONCLUSIVE}


def test_real_but_small_difference_is_not_called_different() -> None:
    cmp = Comparison("paired", 5, 5, diff=0.008, se=0.0015, df=4)  # clearly != 0, < margin
    assert cmp.difference_p() < 0.05
    assert classify(cmp, margin=0.01) == INCONCLUSIVE
    assert classify(cmp, margin=0.005) == DIFFERENT


def test_margin_changes_the_verdict() -> None:
    cmp = Comparison("paired", 5, 5, diff=0.004, se=0.001, df=4)
    assert classify(cmp, margin=0.01) == EQUIVALENT
    assert classify(cmp, margin=0.003) == DIFFERENT


def test_pairing_needs_the_same_seeds() -> None:
    assert compare_seeds({0: 0.3, 1: 0.31}, {0: 0.3, 1: 0.3}).design == "paired"
    assert compare_seeds({0: 0.3, 1: 0.31}, {0: 0.3, 2: 0.3}).design == "welch"


def test_first_separation_finds_the_epoch_where_intervals_stop_overlapping() -> None:
    x = (5, 10, 15)
    a = Curve(x, (0, 1, 2), np.array([[0.10, 0.20, 0.30], [0.11, 0.21, 0.31],
                                      [0.12, 0.22, 0.32]]))
    b = Curve(x, (0, 1, 2), np.array([[0.11, 0.15, 0.20], [0.12, 0.16, 0.21],
                                      [0.10, 0.17, 0.22]]))
    assert first_separation(a, b) == 10
    assert first_separation(a, a) is None


def test_different_verdict_says_where_curves_part() -> None:
    other = [a - 0.05 for a in BASE]
    grouped = group_records(study({"keras-jax": BASE, "torch": other}))
    (runs,) = grouped.groups.values()
    s = summarize_group(runs)
    v = verdict(s["torch"], s["keras-jax"])
    assert v.verdict == DIFFERENT
    assert "accuracy intervals part at epoch" in v.separation
    assert v.ci90[1] == pytest.approx(-0.05)


def test_seeds_needed_for_an_inconclusive_verdict() -> None:
    from bench.report.parity import seeds_needed
    from bench.stats import t_ppf

    cmp = Comparison("paired", 3, 3, diff=0.002, se=0.004, df=2)  # SD of differences ~0.0069
    assert classify(cmp, 0.01) == INCONCLUSIVE
    n = seeds_needed(cmp, 0.01)
    assert n is not None and n > 3
    sd = 0.004 * 3 ** 0.5
    assert t_ppf(0.95, n - 1) * sd / n ** 0.5 < 0.008  # enough at n ...
    assert t_ppf(0.95, n - 2) * sd / (n - 1) ** 0.5 >= 0.008  # ... and not at n - 1
    assert seeds_needed(Comparison("paired", 3, 3, diff=0.02, se=0.004, df=2), 0.01) is None
    assert seeds_needed(Comparison("welch", 1, 3, diff=0.0, se=float("nan"),
                                   df=float("nan")), 0.01) is None
