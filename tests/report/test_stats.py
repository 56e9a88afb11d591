"""bench.stats: the t distribution, intervals, spreads and mean comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import stats

# Two-sided 95% critical values of Student's t, from printed tables.
T_975 = {1: 12.7062, 2: 4.3027, 4: 2.7764, 10: 2.2281, 30: 2.0423}


@pytest.mark.parametrize(("df", "expected"), sorted(T_975.items()))
def test_t_ppf_matches_printed_tables(df: int, expected: float) -> None:
    assert stats.t_ppf(0.975, df) == pytest.approx(expected, abs=5e-5)
    assert stats.t_ppf(0.025, df) == pytest.approx(-expected, abs=5e-5)


def test_t_cdf_inverts_ppf_and_is_symmetric() -> None:
    for df in (1.0, 2.5, 7.0, 100.0):
        for q in (0.6, 0.9, 0.95, 0.999):
            t = stats.t_ppf(q, df)
            assert stats.t_cdf(t, df) == pytest.approx(q, abs=1e-10)
            assert stats.t_cdf(-t, df) == pytest.approx(1 - q, abs=1e-10)
    assert stats.t_cdf(0.0, 3) == 0.5


def test_t_cdf_cauchy_closed_form() -> None:
    # With one degree of freedom t is Cauchy: CDF = 1/2 + atan(t)/pi.
    for t in (-3.0, -0.5, 0.2, 4.0):
        assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


def test_against_scipy_when_installed() -> None:
    sps = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3.7, 12, 250):
        for q in (0.55, 0.95, 0.975, 0.9995):
            assert stats.t_ppf(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-8)
        for t in (-6.0, -1.0, 0.1, 2.5):
            assert stats.t_cdf(t, df) == pytest.approx(sps.t.cdf(t, df), abs=1e-12)


def test_mean_ci() -> None:
    mean, lo, hi = stats.mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    single = stats.mean_ci([0.3])
    assert single[0] == 0.3 and math.isnan(single[1]) and math.isnan(single[2])


def test_spread_ignores_missing_values() -> None:
    s = stats.spread([4.0, None, 1.0, math.nan, 2.0, 3.0])  # type: ignore[list-item]
    assert (s.median, s.low, s.high, s.n) == (2.5, 1.0, 4.0, 4)
    assert s.iqr == pytest.approx(1.5)
    assert stats.spread([]).n == 0


def test_spread_median_is_numpy_median() -> None:
    """Run records store this median (train_epoch_s): np.median's, not the 50th percentile's."""
    s = stats.spread([0.34, 2.06])
    assert s.median == 1.2 != float(np.percentile([0.34, 2.06], 50))  # 1.2000000000000002
    s = stats.spread([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (s.median, s.low, s.high, s.iqr) == (3.0, 1.0, 100.0, 2.0)


def test_compare_means_welch_matches_hand_computation() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    c = stats.compare_means(a, b)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    assert c.design == "welch"
    assert c.diff == pytest.approx(2.5 - 4.0)
    assert c.se == pytest.approx(math.sqrt(va + vb))
    assert c.df == pytest.approx((va + vb) ** 2 / (va**2 / 3 + vb**2 / 2))


def test_compare_means_paired_uses_per_seed_differences() -> None:
    c = stats.compare_means([0.31, 0.30, 0.32], [0.30, 0.29, 0.32], paired=True)
    d = np.array([0.01, 0.01, 0.0])
    assert c.diff == pytest.approx(d.mean())
    assert c.se == pytest.approx(d.std(ddof=1) / math.sqrt(3))
    assert c.df == 2
    with pytest.raises(ValueError):
        stats.compare_means([1.0], [1.0, 2.0], paired=True)


def test_tost_p_and_difference_p() -> None:
    tight = stats.Comparison("paired", 5, 5, diff=0.001, se=0.001, df=4)
    assert tight.tost_p(0.01) < 0.001  # far inside the margin
    assert tight.difference_p() > 0.3  # and no evidence of a difference
    wide = stats.Comparison("paired", 3, 3, diff=0.0, se=0.02, df=2)
    assert wide.tost_p(0.01) > 0.3
    constant = stats.Comparison("paired", 3, 3, diff=0.02, se=0.0, df=2)
    assert constant.tost_p(0.01) == 1.0 and constant.difference_p() == 0.0
    assert constant.interval(0.9) == (0.02, 0.02)
