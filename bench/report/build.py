"""Build the whole report from stored records: groups, summaries, tables, verdicts, files.

`build()` only computes; `write()` writes results/README.md, one CSV per table
kind and the PNG plots. Nothing in the output depends on the time or order in
which records were appended, so a rerun on the same records rewrites identical
bytes.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import pytest_bench, shared_start
from bench.report.parity import DEFAULT_BASELINE, DEFAULT_MARGIN, DIFFERENT, Verdict, verdict
from bench.report.runs import Grouped, GroupKey, Run, group_records
from bench.report.summary import ImplSummary, summarize_group
from bench.report.tables import Table, csv_text, parity_table, retrieval_table, training_table

log = logging.getLogger(__name__)

RETRIEVAL_DIR = "retrieval"  # bench.retrieval.report's section, under the report directory


@dataclass
class GroupReport:
    """One comparable group's summaries, tables and verdicts."""

    key: GroupKey
    runs: list[Run]
    summaries: dict[str, ImplSummary]
    verdicts: list[Verdict]
    tables: list[Table]

    @property
    def slug(self) -> str:
        """Stable file-name stem (GroupKey.slug)."""
        return self.key.slug()

    def csv_fields(self) -> dict[str, Any]:
        """The group's identity, prefixed to every CSV row."""
        k = self.key
        return {"group": self.slug, "machine": k.machine, "gpu": k.gpu, "device": k.device,
                "dataset": k.dataset, "dataset_hash": k.dataset_hash,
                "layer_sizes": "x".join(str(n) for n in k.layer_sizes), "spec_id": k.spec_id(),
                "versions": self.versions_text()}

    def versions_text(self) -> str:
        """Every package version seen in the group's runs, e.g. "jax 0.4.36, numpy 2.0.0"."""
        seen: dict[str, set[str]] = {}
        for r in self.runs:
            for name, v in r.versions.items():
                seen.setdefault(name, set()).add(v)
        return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(seen.items()))


@dataclass
class Report:
    """Everything the report shows."""

    baseline: str
    margin: float
    grouped: Grouped
    groups: list[GroupReport]
    shared_start: shared_start.SharedStart
    results_dir: Path
    pytest_docs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    record_count: int = 0
    retrieval_records: list[dict[str, Any]] = field(default_factory=list)

    def different(self) -> list[str]:
        """Every `different` verdict, as "impl vs baseline (layers)" lines."""
        out = [f"{v.impl} vs {v.baseline} (layers {g.key.layer_sizes}, {g.slug})"
               for g in self.groups for v in g.verdicts if v.verdict == DIFFERENT]
        out += [f"{p.impl} vs {p.baseline} (shared-start steps)"
                for p in self.shared_start.pairs if p.verdict == DIFFERENT]
        return out


def _group_report(key: GroupKey, runs: list[Run], baseline: str, margin: float) -> GroupReport:
    summaries = summarize_group(runs)
    base = summaries.get(baseline)
    verdicts = ([verdict(s, base, margin) for name, s in summaries.items() if name != baseline]
                if base else [])
    tables = [training_table(summaries, baseline), retrieval_table(summaries, baseline),
              parity_table(verdicts, summaries)]
    return GroupReport(key, runs, summaries, verdicts, tables)


def build(records: list[dict[str, Any]], results_dir: Path, baseline: str = DEFAULT_BASELINE,
          margin: float = DEFAULT_MARGIN, pytest_files: list[Path] | None = None,
          retrieval_records: list[dict[str, Any]] | None = None) -> Report:
    """Compute the report from stored record dicts.

    Args:
        records: every stored record dict (ResultsStore.iter_dicts()).
        results_dir: where the records live (for side artifacts such as shared-start parity).
        baseline: implementation every ratio and verdict is relative to.
        margin: equivalence margin on final top-100 accuracy (absolute).
        pytest_files: pytest-benchmark JSON files to tabulate as well.
        retrieval_records: records of `bench retrieval`'s own store (kind "retrieval"),
            added to any found among `records`.
    """
    grouped = group_records(records)
    groups = [_group_report(k, runs, baseline, margin) for k, runs in grouped.sorted_groups()]
    docs = [(p.name, pytest_bench.load(p)) for p in sorted(pytest_files or [])]
    return Report(baseline=baseline, margin=margin, grouped=grouped, groups=groups,
                  shared_start=shared_start.load(results_dir), results_dir=results_dir,
                  pytest_docs=docs, retrieval_records=[
                      *grouped.other_kinds.get("retrieval", []), *(retrieval_records or [])],
                  record_count=len(records))


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _plots(g: GroupReport, plot_dir: Path) -> dict[str, Path]:
    from bench.report import plots  # matplotlib: imported only when plots are drawn

    layers = g.key.layer_sizes
    spec = g.key.spec_dict()
    title = f"layers {layers}\n{g.key.machine}, {g.key.device}, {g.key.dataset}"
    paths = {name: plot_dir / f"{g.slug}-{name}.png"
             for name in ("accuracy", "epoch-time", "retrieval-latency", "time-to-accuracy")}
    plots.accuracy_vs_epoch(g.summaries, f"Top-100 accuracy: {title}", spec,
                            paths["accuracy"])
    plots.epoch_time(g.summaries, f"Steady-state epoch time: {title}", paths["epoch-time"])
    plots.retrieval_latency(g.summaries, f"Top-100 retrieval: {title}",
                            paths["retrieval-latency"])
    plots.time_to_accuracy(g.summaries, f"Accuracy vs training time: {title}",
                           paths["time-to-accuracy"])
    return paths


def _retrieval_at_scale(report: Report, out: Path) -> Path | None:
    """bench.retrieval.report's section for the kind="retrieval" records, under out/retrieval.

    It writes `retrieval.md` and `plots/retrieval-*.png` there itself (where
    `bench retrieval` writes them by default); None when there is nothing to show.
    """
    records = report.retrieval_records
    if not records:
        return None
    try:
        module = importlib.import_module("bench.retrieval.report")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench.retrieval", "bench.retrieval.report"):
            raise
        log.info("bench.retrieval.report not installed: retrieval-at-scale section skipped")
        return None
    module.write_section(records, out / RETRIEVAL_DIR)
    return out / RETRIEVAL_DIR / "retrieval.md"


def write(report: Report, out: Path, with_plots: bool = True) -> list[Path]:
    """Write README.md, the CSVs and (unless `with_plots` is False) the plots under `out`.

    Returns the paths written (the retrieval section's own files aside).
    """
    from bench.report import markdown

    out.mkdir(parents=True, exist_ok=True)
    # The retrieval section first: it reads the most free-form records, so a bad
    # one fails before any training table is rewritten.
    section = _retrieval_at_scale(report, out)
    written: list[Path] = []
    plot_paths: dict[str, dict[str, Path]] = {}
    if with_plots:
        (out / "plots").mkdir(exist_ok=True)
        for g in report.groups:
            plot_paths[g.slug] = _plots(g, out / "plots")
            written += plot_paths[g.slug].values()
    kinds = ["training", "retrieval_latency", "parity"]
    for i, kind in enumerate(kinds):
        rows = [(g.csv_fields(), g.tables[i]) for g in report.groups]
        written.append(_write_text(out / f"{kind}.csv", csv_text(rows)))
    if report.shared_start.found:
        ss = shared_start.table(report.shared_start)
        written.append(_write_text(out / "shared_start_parity.csv", csv_text([({}, ss)])))
    if report.pytest_docs:
        pt = pytest_bench.table(report.pytest_docs)
        written.append(_write_text(out / "pytest_benchmark.csv", csv_text([({}, pt)])))
    if section is not None:
        written.append(section)
    text = markdown.render(report, out, plot_paths, section)
    written.append(_write_text(out / "README.md", text))
    return written
