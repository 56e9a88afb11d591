"""Small-sample statistics for the report, in plain numpy/math (no scipy needed).

Student's t distribution is computed from the regularized incomplete beta
function (continued fraction, modified Lentz), and its quantile by bisection
on the CDF, so t intervals and the equivalence test work on a core install.
Where scipy is installed the tests check these routines against it.

Example:
    >>> round(t_ppf(0.975, 2), 4)
    4.3027
    >>> m, lo, hi = mean_ci([0.30, 0.31, 0.32])
    >>> round(m, 2), lo < m < hi
    (0.31, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_EPS = 1e-15
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    # The continued fraction converges fast only below the mean; use symmetry above it.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` (possibly fractional) degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_ppf(q: float, df: float) -> float:
    """The q-quantile of Student's t with `df` degrees of freedom (bisection on t_cdf)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:  # df >= 1 keeps this bounded (about 6e5 at q=0.9999995)
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t interval (mean, low, high); a single value gives nan bounds."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if x.size < 2:
        return (mean, math.nan, math.nan)
    half = t_ppf(0.5 + level / 2.0, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return (mean, mean - half, mean + half)


@dataclass(frozen=True)
class Spread:
    """Median and spread of a sample: min, quartiles, max and count."""

    median: float
    low: float  # minimum
    high: float  # maximum
    q1: float
    q3: float
    n: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def spread(values: Sequence[float]) -> Spread:
    """Median, min, max and quartiles of the values present (None and nan dropped).

    The median is np.median's (the mean of the middle two for an even count),
    which can differ in the last bit from the 50th percentile's interpolation:
    run records store it as `train_epoch_s`, so it must stay np.median's. The
    quartiles use numpy's linear interpolation. All nan (n=0) when empty.
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if x.size == 0:
        return Spread(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    q1, q3 = (float(v) for v in np.percentile(x, [25, 75]))
    return Spread(float(np.median(x)), float(x.min()), float(x.max()), q1, q3, int(x.size))


@dataclass(frozen=True)
class Comparison:
    """Difference of means (a - b) with its t statistics, as the equivalence test uses it.

    `design` is "paired" (same seeds on both sides: differences per seed) or
    "welch" (independent samples, Welch-Satterthwaite degrees of freedom).
    """

    design: str
    n_a: int
    n_b: int
    diff: float  # mean(a) - mean(b)
    se: float  # standard error of diff; 0 when both samples are constant
    df: float  # degrees of freedom (nan when se cannot be estimated)

    def interval(self, level: float) -> tuple[float, float]:
        """Two-sided `level` t interval for the difference (nan when df is unknown)."""
        if self.se == 0.0:
            return (self.diff, self.diff)
        if math.isnan(self.df):
            return (math.nan, math.nan)
        half = t_ppf(0.5 + level / 2.0, self.df) * self.se
        return (self.diff - half, self.diff + half)

    def tost_p(self, margin: float) -> float:
        """Two one-sided tests against +-margin: the larger of the two p values."""
        if self.se == 0.0:
            return 0.0 if abs(self.diff) < margin else 1.0
        if math.isnan(self.df):
            return math.nan
        p_low = 1.0 - t_cdf((self.diff + margin) / self.se, self.df)  # H0: diff <= -margin
        p_high = t_cdf((self.diff - margin) / self.se, self.df)  # H0: diff >= +margin
        return max(p_low, p_high)

    def difference_p(self) -> float:
        """Two-sided p value of H0: diff = 0."""
        if self.se == 0.0:
            return 1.0 if self.diff == 0.0 else 0.0
        if math.isnan(self.df):
            return math.nan
        return 2.0 * (1.0 - t_cdf(abs(self.diff) / self.se, self.df))


def compare_means(
    a: Sequence[float], b: Sequence[float], paired: bool = False
) -> Comparison:
    """Difference of means a - b; `paired` needs equal lengths, aligned by seed.

    Args:
        a: per-seed values of one implementation.
        b: per-seed values of the other (the baseline).
        paired: treat a[i] and b[i] as one seed's pair (shared initial weights).
    """
    xa, xb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if paired:
        if xa.shape != xb.shape:
            raise ValueError("paired comparison needs equal-length samples")
        d = xa - xb
        se = float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else math.nan
        df = float(d.size - 1) if d.size > 1 else math.nan
        return Comparison("paired", xa.size, xb.size, float(d.mean()), se, df)
    if xa.size < 2 or xb.size < 2:
        diff = float(xa.mean() - xb.mean()) if xa.size and xb.size else math.nan
        return Comparison("welch", xa.size, xb.size, diff, math.nan, math.nan)
    va, vb = float(xa.var(ddof=1)) / xa.size, float(xb.var(ddof=1)) / xb.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1)) if se else math.nan
    return Comparison("welch", xa.size, xb.size, float(xa.mean() - xb.mean()), se, df)
