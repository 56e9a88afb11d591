"""The retrieval section of the report: markdown tables and plots from stored records only.

    from bench.retrieval.report import write_section
    markdown = write_section(records, Path("results/retrieval"))

writes `retrieval.md` (and returns its text) and `plots/retrieval-*.png` in
the output directory: per (dim, k) a QPS pivot at the largest batch, the
ratio of every exact contender's QPS to faiss-flat's at the largest
candidate count, and a full table (QPS, latency p50/p95/p99, recall, peak
memory, build time) for every contender, candidate count and batch; a
log-log latency-vs-candidates plot and a recall-vs-QPS plot of the
approximate contenders. Records on trained embeddings (`bench retrieval
--embeddings`) follow in their own section (bench/retrieval/report_trained.py),
one subsection per workload, never in the random workload's tables. The same
records always give the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.retrieval import report_trained
from bench.retrieval.report_tables import (
    OTHER_MACHINE,
    REFERENCE,
    full_table,
    groups,
    label,
    pivot,
    provenance,
    ratios,
    readable,
    select,
    workload_key,
)
from bench.store import atomic_write

__all__ = ["OTHER_MACHINE", "REFERENCE", "SECTION_FILE", "latest", "render", "select",
           "summary_text", "write_section"]
SECTION_FILE = "retrieval.md"


def latest(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`select`'s records of the newest record's workload (the left-out count dropped)."""
    recs = readable(records)[0]
    if not recs:
        return []
    newest = max(recs, key=lambda r: str(r.get("started_at")))
    return select(recs, workload_key(newest))[0]


def summary_text(records: Iterable[Mapping[str, Any]]) -> str:
    """The CLI's end-of-run summary: per (dim, k), QPS at the largest batch, and ratios."""
    recs = latest(records)
    lines: list[str] = []
    if recs and workload_key(recs[0]):
        w = recs[0]["spec"]["workload"]
        lines += [f"trained embeddings: {w.get('dataset')}, run {w.get('run_id')}", ""]
    for (dim, k), group in groups(recs).items():
        batch = max(r["spec"]["batch"] for r in group)
        lines += [f"dim {dim}, k {k}: QPS at batch {batch}", ""] + pivot(group, batch)
        lines += ratios(group)
    failed = [r for r in recs if r["status"] != "ok"]
    lines += [f"{len(recs)} records, {len(failed)} not ok"]
    lines += [f"  {label(r)} N={r['spec']['candidates']} dim={r['spec']['dim']} k={r['spec']['k']}"
              f" batch={r['spec']['batch']}: {r['status']}" for r in failed[:20]]
    return "\n".join(lines)


def render(records: Iterable[Mapping[str, Any]], command: str | None = None,
           plots: Mapping[tuple[int, int], list[str]] | None = None) -> str:
    """The section's markdown text (see the module docstring), without the trained plots."""
    records = list(records)
    recs, left_out = select(records)
    trained = report_trained.text(records, recs)
    return _render(recs, left_out, command, plots, bool(trained)) + trained


def _render(recs: list[Mapping[str, Any]], left_out: Counter[str], command: str | None,
            plots: Mapping[tuple[int, int], list[str]] | None, trained: bool = False) -> str:
    """The random workload's text from `select`'s records and left-out count."""
    if not recs:
        none = "No records on random embeddings.\n" if trained else "No retrieval records.\n"
        return "## Top-k retrieval at scale\n\n" + none
    lines = ["## Top-k retrieval at scale", ""] + provenance(recs, command, left_out)
    lines += ["QPS = queries per second over the timed calls (after one untimed first call);",
              "latency is one batch, ending in the framework's sync and host copy. recall is",
              "tie-aware recall@k vs the exact numpy answer (ids counted as hits when their",
              "exact score reaches the k-th best within float32 rounding); 'recall (ids)' is",
              "the plain id overlap. search peak MB: peak host RSS during the timed calls",
              "minus RSS right after the index was built (score matrices live here; GPU",
              "memory is not in it); index MB: RSS the built index added. Cells '(r=...)'",
              "flag recall < 1 (rounded down); '(nprobe ran 42)' a parameter the library",
              "clamped.", ""]
    for (dim, k), group in groups(recs).items():
        batch = max(r["spec"]["batch"] for r in group)
        lines += [f"### dim {dim}, k {k}", "", f"QPS at batch {batch}:", ""]
        lines += pivot(group, batch) + ratios(group)
        lines += [f"![{p}](plots/{p})" for p in (plots or {}).get((dim, k), [])] + [""]
        lines += ["<details><summary>All settings</summary>", ""] + full_table(group)
        lines += ["</details>", ""]
    return "\n".join(lines)


def write_section(records: Iterable[Mapping[str, Any]], out_dir: Path,
                  command: str | None = None) -> str:
    """Write retrieval.md and plots/retrieval-*.png under `out_dir`; return the markdown.

    Args:
        records: stored records of any kind (only kind "retrieval" is used).
        out_dir: the report directory (created).
        command: the command that produced the records, when not stored in them.
    """
    from bench.retrieval.report_plots import write_plots  # matplotlib only when writing

    records = list(records)
    recs, left_out = select(records)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(recs, out_dir / "plots", groups(recs)) if recs else {}
    trained_plots = {}
    for key in report_trained.workloads(records):
        chosen = select(records, key)[0]
        trained_plots[key] = write_plots(chosen, out_dir / "plots", groups(chosen),
                                         prefix=f"retrieval-trained-{report_trained.slug(chosen)}",
                                         latency=False)
    trained = report_trained.text(records, recs, trained_plots)
    text = _render(recs, left_out, command, plots, bool(trained)) + trained
    with atomic_write(out_dir / SECTION_FILE) as f:  # a reader never sees half a section
        f.write(text)
    return text
