"""Per-implementation summaries of one comparable group: what every table and plot shows.

Accuracy is summarised over seeds (repeats of one seed are averaged first, so
a seed counts once); timings are summarised over every run (repeats are more
samples of the same thing). Steady-state epoch times are pooled over all the
steady epochs of all runs, since each is one synchronised measurement.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.report.runs import Run
from bench.stats import Spread, mean_ci, spread

ACCURACY = "top100_accuracy_numpy"  # the harness's own numpy evaluation: same code for every impl
ACCURACY_IMPL = "top100_accuracy_impl"


@dataclass(frozen=True)
class Curve:
    """Per-seed values at shared x positions (epochs), seeds in ascending order."""

    x: tuple[int, ...]
    seeds: tuple[int, ...]
    values: np.ndarray  # (seeds, len(x)); nan where a seed lacks that point


@dataclass
class ImplSummary:
    """Everything the report shows about one implementation in one group."""

    impl: str
    runs: list[Run]
    seed_accuracy: dict[int, float]  # seed -> final top-100 accuracy (mean over repeats)
    accuracy: tuple[float, float, float]  # mean, 95% low, 95% high over seeds
    impl_metric_gap: float  # max |impl metric - numpy metric| over runs
    compile_s: Spread
    epoch_s: Spread  # pooled steady epochs
    step_ms: Spread  # per-run figure
    examples_per_s: Spread
    peak_rss_mb: Spread
    peak_device_mb: Spread
    retrieve_agreement: float  # min over runs; nan when not measured
    shared_start: bool = True  # every run started from the harness's shared initial weights
    retrieval: dict[int, dict[str, Spread]] = field(default_factory=dict)  # batch -> metric

    @property
    def seeds(self) -> list[int]:
        return sorted(self.seed_accuracy)

    def versions(self) -> dict[str, list[str]]:
        """Every package version seen in this implementation's runs."""
        seen: dict[str, set[str]] = defaultdict(set)
        for r in self.runs:
            for k, v in r.versions.items():
                seen[k].add(v)
        return {k: sorted(v) for k, v in sorted(seen.items())}

    def accuracy_curve(self) -> Curve:
        """Validation top-100 accuracy per seed at each validation epoch."""
        return _per_seed_curve(self.runs, "val_epoch", "val_top100_accuracy")

    def loss_curve(self) -> Curve:
        """Epoch loss per seed at each epoch."""
        return _per_seed_curve(self.runs, "epoch", "epoch_loss")

    def time_to_accuracy(self) -> tuple[list[float], list[float]]:
        """(mean cumulative training seconds, mean accuracy) at each validation epoch."""
        acc = self.accuracy_curve()
        elapsed = _per_seed_curve(self.runs, "epoch", "epoch_s", cumulative=True)
        xs = [_nanmean(elapsed.values[:, elapsed.x.index(e)]) if e in elapsed.x else math.nan
              for e in acc.x]
        ys = [_nanmean(acc.values[:, i]) for i in range(len(acc.x))]
        return xs, ys


def _nanmean(col: np.ndarray) -> float:
    col = col[~np.isnan(col)]
    return float(col.mean()) if col.size else math.nan


def _per_seed_curve(runs: Sequence[Run], x_name: str, y_name: str,
                    cumulative: bool = False) -> Curve:
    """Average repeats of a seed point by point; seeds x epochs, nan where missing."""
    points: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        xs, ys = r.curve.get(x_name) or [], r.curve.get(y_name) or []
        total = 0.0
        for x, y in zip(xs, ys, strict=False):
            if y is None:
                total = math.nan  # a missing epoch time breaks the cumulative sum
                continue
            total += float(y)
            points[r.seed][int(x)].append(total if cumulative else float(y))
    x_all = tuple(sorted({x for per in points.values() for x in per}))
    seeds = tuple(sorted(points))
    values = np.full((len(seeds), len(x_all)), np.nan)
    for i, s in enumerate(seeds):
        for j, x in enumerate(x_all):
            if points[s].get(x):
                values[i, j] = float(np.mean(points[s][x]))
    return Curve(x_all, seeds, values)


def _retrieval(runs: Sequence[Run]) -> dict[int, dict[str, Spread]]:
    batches = sorted({int(b) for r in runs for b in r.retrieval})
    out: dict[int, dict[str, Spread]] = {}
    for b in batches:
        rows = [r.retrieval.get(str(b)) or {} for r in runs]
        out[b] = {m: spread([_num(row.get(m)) for row in rows])
                  for m in ("p50_ms", "p95_ms", "p99_ms", "qps")}
    return out


def _num(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def summarize(impl: str, runs: Sequence[Run]) -> ImplSummary:
    """Summary of one implementation's runs within one group."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        if not math.isnan(r.figure(ACCURACY)):
            by_seed[r.seed].append(r.figure(ACCURACY))
    seed_acc = {s: float(np.mean(v)) for s, v in sorted(by_seed.items())}
    gaps = [abs(r.figure(ACCURACY) - r.figure(ACCURACY_IMPL)) for r in runs]
    gaps = [g for g in gaps if not math.isnan(g)]
    agreement = [r.figure("retrieve_agreement") for r in runs]
    agreement = [a for a in agreement if not math.isnan(a)]
    return ImplSummary(
        impl=impl, runs=list(runs), seed_accuracy=seed_acc,
        accuracy=mean_ci(list(seed_acc.values())),
        impl_metric_gap=max(gaps) if gaps else math.nan,
        compile_s=spread([r.figure("compile_s") for r in runs]),
        epoch_s=spread([t for r in runs for t in r.steady_epoch_s()]),
        step_ms=spread([r.figure("train_step_ms") for r in runs]),
        examples_per_s=spread([r.figure("train_examples_per_s") for r in runs]),
        peak_rss_mb=spread([r.figure("peak_rss_mb") for r in runs]),
        peak_device_mb=spread([r.figure("peak_device_memory_mb") for r in runs]),
        retrieve_agreement=min(agreement) if agreement else math.nan,
        retrieval=_retrieval(runs), shared_start=all(r.shared_start for r in runs),
    )


def summarize_group(runs: Sequence[Run]) -> dict[str, ImplSummary]:
    """Summaries of every implementation in one group, by implementation name (sorted)."""
    by_impl: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_impl[r.impl].append(r)
    return {impl: summarize(impl, rs) for impl, rs in sorted(by_impl.items())}
