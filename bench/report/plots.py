"""PNG plots of one group, reproducible byte for byte with one matplotlib version.

The Agg backend, a fixed figure size and DPI, fixed colours per implementation
(sorted names), and no PNG metadata (no "Software" version string), so
re-running the report on the same records rewrites identical files.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display, same pixels everywhere; before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bench.registry import REGISTRY  # noqa: E402
from bench.report.published import published_accuracy  # noqa: E402
from bench.report.summary import ImplSummary  # noqa: E402

FIGSIZE = (7.0, 4.5)  # inches
DPI = 100
_COLORS = [plt.get_cmap("tab10")(i)[:3] for i in range(10)]  # fixed qualitative palette
_COLORS += [(0.0, 0.0, 0.5), (0.72, 0.53, 0.04), (0.4, 0.0, 0.4)]  # beyond ten: navy, gold...
_COLORS += [(0.35, 0.35, 0.35), (0.55, 0.27, 0.07), (0.0, 0.5, 0.5)]  # grey, brown, teal
# Colour order, fixed once and only ever appended to, so a registry entry added in the
# middle never recolours the plots already committed; other names follow in registry order.
_COLOR_ORDER = ("keras-jax", "keras-tf", "keras-torch", "jax", "jax-scan", "jax-padded",
                "jax-dedup", "torch", "torch-dedup", "torch-compile", "jax-sparse", "torch-sparse",
                "keras-reference", "keras-reference-tf", "keras-reference-torch")



def save_png(fig: Figure, path: Path) -> None:
    """Write `fig` as a reproducible PNG (fixed DPI, no metadata) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)


def _new(title: str, xlabel: str, ylabel: str) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _color(impl: str) -> tuple[float, ...]:
    """One colour per implementation name, the same in every chart (_COLOR_ORDER)."""
    names = [*_COLOR_ORDER, *(n for n in REGISTRY if n not in _COLOR_ORDER)]
    i = names.index(impl) if impl in names else len(names) + sum(map(ord, impl))
    return _COLORS[i % len(_COLORS)]


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # all-nan columns stay nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmean(values, axis=0), np.nanmin(values, axis=0),
                np.nanmax(values, axis=0))


def accuracy_vs_epoch(summaries: dict[str, ImplSummary], title: str,
                      spec: dict[str, object], path: Path) -> None:
    """Mean validation top-100 accuracy per epoch per impl, band = min-max over seeds.

    The reference program's published figure is marked when the spec is its spec.
    """
    fig, ax = _new(title, "epoch", "top-100 accuracy (test, 5-star)")
    for s in summaries.values():
        c = s.accuracy_curve()
        if not c.x:
            continue
        mean, lo, hi = _band(c.values)
        color = _color(s.impl)
        ax.plot(c.x, mean, marker="o", ms=3, color=color, label=f"{s.impl} ({len(c.seeds)} seeds)")
        ax.fill_between(c.x, lo, hi, color=color, alpha=0.2, linewidth=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ref = published_accuracy(spec)
    if ref is not None:
        ax.plot([30], [ref], marker="*", ms=12, color="black", linestyle="none",
                label="keras-io reference (30 epochs)")
    ax.legend(fontsize=8)
    save_png(fig, path)


def epoch_time(summaries: dict[str, ImplSummary], title: str, path: Path) -> None:
    """Box plot of steady-state epoch times (every steady epoch of every run) per impl."""
    fig, ax = _new(title, "implementation", "steady-state epoch (s)")
    names = [s.impl for s in summaries.values()]
    data = [[t for r in s.runs for t in r.steady_epoch_s()] or [math.nan]
            for s in summaries.values()]
    ax.boxplot(data, whis=(0, 100))  # whiskers at min and max: every epoch is shown
    ax.set_xticks(range(1, len(names) + 1), names, rotation=20, fontsize=8)
    save_png(fig, path)


def retrieval_latency(summaries: dict[str, ImplSummary], title: str, path: Path) -> None:
    """p50 (solid) and p99 (dashed) top-100 retrieval latency against batch size, log-log."""
    fig, ax = _new(title, "query batch size", "latency per batch (ms)")
    for s in summaries.values():
        batches = sorted(s.retrieval)
        if not batches:
            continue
        p50 = [s.retrieval[b]["p50_ms"].median for b in batches]
        p99 = [s.retrieval[b]["p99_ms"].median for b in batches]
        color = _color(s.impl)
        ax.plot(batches, p50, marker="o", color=color, label=f"{s.impl} p50")
        ax.plot(batches, p99, marker="x", linestyle="--", color=color, label=f"{s.impl} p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    save_png(fig, path)


def time_to_accuracy(summaries: dict[str, ImplSummary], title: str, path: Path) -> None:
    """Mean accuracy against mean cumulative synchronised training time, per impl."""
    fig, ax = _new(title, "cumulative training time (s, synchronised epochs)",
                   "top-100 accuracy (test, 5-star)")
    for s in summaries.values():
        xs, ys = s.time_to_accuracy()
        if xs:
            ax.plot(xs, ys, marker="o", ms=3, color=_color(s.impl), label=s.impl)
    ax.legend(fontsize=8)
    save_png(fig, path)


def accuracy_distributions(slots: list[tuple[str, dict[str, list[float]], float | None]],
                           title: str, path: Path) -> None:
    """Final accuracy over seeds side by side: per slot (one group, i.e. one depth) a box
    (whiskers at min and max) and every seed's point per implementation, and a black star
    for the published single run where the slot has one (Against the reference program).

    Args:
        slots: (x label, impl -> per-seed values, published value or None), in order.
    """
    fig, ax = _new(title, "", "top-100 accuracy (numpy, after the last epoch)")
    impls = list(dict.fromkeys(i for _, vals, _ in slots for i in vals))
    width = 0.8 / max(len(impls), 1)
    labelled: set[str] = set()
    for x, (_, vals, published) in enumerate(slots):
        for j, impl in enumerate(impls):
            v = vals.get(impl) or []
            if not v:
                continue
            pos = x + (j - (len(impls) - 1) / 2) * width
            ax.boxplot([v], positions=[pos], widths=0.7 * width, whis=(0, 100),
                       showfliers=False, manage_ticks=False)
            spread_x = np.linspace(-0.2, 0.2, len(v)) * width  # fixed offsets: no random jitter
            ax.scatter(pos + spread_x, v, s=12, color=_color(impl), zorder=3,
                       label=None if impl in labelled else impl)
            labelled.add(impl)
        if published is not None:
            ax.plot([x], [published], marker="*", ms=12, color="black", linestyle="none",
                    label=None if "published" in labelled else "keras-io published run")
            labelled.add("published")
    ax.set_xticks(range(len(slots)), [label for label, _, _ in slots], fontsize=8)
    ax.legend(fontsize=8)
    save_png(fig, path)


def scaling(series_values: dict[str, tuple[list[int], list[float]]], title: str, xlabel: str,
            ylabel: str, path: Path, floor: tuple[list[int], list[float]] | None = None) -> None:
    """One line per implementation of y against x, log-log (How cost grows).

    Args:
        series_values: impl -> (x values, y values).
        floor: (x, y) of what the run needs (params + Adagrad + data), drawn dashed.
    """
    fig, ax = _new(title, xlabel, ylabel)
    for impl, (xs, ys) in series_values.items():
        if xs:
            ax.plot(xs, ys, marker="o", ms=4, color=_color(impl), label=impl)
    if floor is not None and floor[0]:
        ax.plot(*floor, linestyle="--", color="black", label="needed (params + Adagrad + data)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    save_png(fig, path)
