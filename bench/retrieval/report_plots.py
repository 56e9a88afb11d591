"""PNG plots of the retrieval section: latency vs candidates (log-log), recall vs QPS.

Agg backend, fixed size, DPI and colours, no PNG metadata: the same records
give the same bytes with one matplotlib version.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from bench.report.plots import save_png  # noqa: E402
from bench.retrieval.contenders import CONTENDERS  # noqa: E402

REFERENCE = "faiss-flat"  # the exact point on the recall-vs-QPS plot
_CMAP = plt.get_cmap("tab20")


def _color(name: str) -> tuple[float, ...]:
    names = list(CONTENDERS)
    i = names.index(name) if name in names else len(names)
    return _CMAP(i % 20)


def _ok(recs: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in recs if r["status"] == "ok" and r["figures"].get("p50_ms")]


def latency_plot(recs: list[Mapping[str, Any]], dim: int, k: int, path: Path) -> None:
    """One panel per batch: p50 latency vs candidate count, one line per exact contender
    (approximate ones at their first param), log-log."""
    batches = sorted({r["spec"]["batch"] for r in recs})
    fig, axes = plt.subplots(1, len(batches), figsize=(5.0 * len(batches), 4.5), squeeze=False)
    for ax, batch in zip(axes[0], batches, strict=True):
        lines: dict[str, list[tuple[int, float]]] = {}
        for r in _ok(recs):
            params = r["spec"].get("params") or {}
            first = dict(CONTENDERS[r["impl"]].params[0]) if r["impl"] in CONTENDERS else {}
            if r["spec"]["batch"] == batch and params == first:
                lines.setdefault(r["impl"], []).append((r["spec"]["candidates"],
                                                        r["figures"]["p50_ms"]))
        for name, pts in sorted(lines.items()):
            pts.sort()
            style = "-" if CONTENDERS.get(name) is None or CONTENDERS[name].exact else "--"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", ms=3,
                    color=_color(name), label=name)
        ax.set(xscale="log", yscale="log", xlabel="candidates", ylabel="p50 latency per batch (ms)",
               title=f"dim {dim}, k {k}, batch {batch}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_png(fig, path)


def recall_qps_plot(recs: list[Mapping[str, Any]], dim: int, k: int, path: Path,
                    tag: str = "") -> None:
    """At the largest N, one panel per batch: recall vs QPS of approximate contenders
    (one point per search param), with faiss-flat as the exact reference point."""
    n = max(r["spec"]["candidates"] for r in recs)
    batches = sorted({r["spec"]["batch"] for r in recs})
    fig, axes = plt.subplots(1, len(batches), figsize=(5.0 * len(batches), 4.5), squeeze=False)
    for ax, batch in zip(axes[0], batches, strict=True):
        by_impl: dict[str, list[tuple[float, float]]] = {}
        for r in _ok(recs):
            exact = CONTENDERS[r["impl"]].exact if r["impl"] in CONTENDERS else True
            if (r["spec"]["candidates"] == n and r["spec"]["batch"] == batch
                    and (not exact or r["impl"] == REFERENCE)):
                by_impl.setdefault(r["impl"], []).append((r["figures"]["qps"],
                                                          r["figures"]["recall"]))
        for name, pts in sorted(by_impl.items()):
            exact = CONTENDERS[name].exact if name in CONTENDERS else True
            pts.sort(key=lambda p: p[1])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "*" if exact else "-o",
                    ms=10 if exact else 5, color=_color(name),
                    label=f"{name} (exact)" if exact else name)
        ax.set(xscale="log", xlabel="queries per second", ylabel=f"recall@{k}",
               title=f"{tag}N={n:,}, dim {dim}, k {k}, batch {batch}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_png(fig, path)


def write_plots(recs: list[Mapping[str, Any]], folder: Path,
                groups: Mapping[tuple[int, int], list[Mapping[str, Any]]],
                prefix: str = "retrieval", latency: bool = True) -> dict[
                    tuple[int, int], list[str]]:
    """Both plots per (dim, k) group; returns their file names per group.

    `prefix` starts every file name (a trained workload's own, so its plots never
    overwrite the random ones); `latency` False leaves out the latency-vs-candidates
    plot (one trained workload has a single candidate count).
    """
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[int, int], list[str]] = {}
    for (dim, k), group in groups.items():
        if not _ok(group):
            continue
        lat, rq = f"{prefix}-latency-d{dim}-k{k}.png", f"{prefix}-recall-qps-d{dim}-k{k}.png"
        if latency:
            latency_plot(group, dim, k, folder / lat)
        recall_qps_plot(group, dim, k, folder / rq, "" if latency else "trained, ")
        names[(dim, k)] = [lat, rq] if latency else [rq]
    return names
