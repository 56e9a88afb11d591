"""Build the whole report from stored records: groups, summaries, tables, verdicts.

`build()` only computes a `Report`; bench/report/files.py writes it (README.md
through markdown.py, the CSVs, the plots). Nothing in a Report depends on the
time or order in which records were appended, so a rerun on the same records
rewrites identical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import devices, pytest_bench, shared_start
from bench.report.group import GroupReport
from bench.report.parity import DEFAULT_BASELINE, DEFAULT_MARGIN, DIFFERENT, verdict
from bench.report.reference import ReferenceSection, find_reference
from bench.report.runs import Grouped, GroupKey, Run, group_records
from bench.report.scaling import COMMANDS_FILE, Series, find_series
from bench.report.shared_start import Pair
from bench.report.summary import summarize_group
from bench.report.tables import parity_table, retrieval_table, training_table


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
    scaling: list[Series] = field(default_factory=list)  # "How cost grows" (report/scaling.py)
    # "Data parallel: N devices against one" (report/devices.py); found False: no section.
    data_parallel: devices.DataParallel | None = None
    commands: list[str] = field(default_factory=list)  # a study's commands.txt, quoted
    # "Against the reference program" (report/reference.py); found False: no section.
    reference: ReferenceSection = field(default_factory=lambda: ReferenceSection(found=False))

    def different(self) -> list[str]:
        """Every `different` verdict without a known cause, as "impl vs baseline (...)" lines:
        what `bench report --check` fails on."""
        out = [f"{v.impl} vs {v.baseline} (layers {g.key.layer_sizes}, {g.slug})"
               for g in self.groups for v in g.verdicts if v.verdict == DIFFERENT]
        return out + [_step_line(p, kind) for kind, p in self._step_pairs() if p.unexplained]

    def expected_differences(self) -> list[str]:
        """Every step-level `different` verdict with its known cause (it passes --check)."""
        return [f"{_step_line(p, kind)}: {p.expected}" for kind, p in self._step_pairs()
                if p.verdict == DIFFERENT and p.expected]

    def _step_pairs(self) -> list[tuple[str, Pair]]:
        dp = self.data_parallel.parity.pairs if self.data_parallel else []
        return ([("shared-start steps", p) for p in self.shared_start.pairs]
                + [("1-vs-N devices, shared start", p) for p in dp])


def _step_line(p: Pair, kind: str) -> str:
    layers = f", layers {p.layer_sizes}" if p.layer_sizes else ""
    return f"{p.impl} vs {p.baseline} ({kind}{layers})"


def _group_report(key: GroupKey, runs: list[Run], baseline: str, margin: float) -> GroupReport:
    summaries = summarize_group(runs)
    base = summaries.get(baseline)
    verdicts = ([verdict(s, base, margin, key.split) for name, s in summaries.items()
                 if name != baseline]
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

    Groups that form a series (bench/report/scaling.py: same spec, datasets of several
    sizes) go to "How cost grows", and groups over several devices (bench/report/devices.py)
    to "Data parallel", instead of getting tables and verdicts of their own.
    """
    grouped = group_records(records)
    dp = devices.find(grouped.groups, results_dir)
    single = {k: runs for k, runs in grouped.groups.items() if k not in dp.members}
    series = find_series(single)
    shown_apart = {p.key for s in series for p in s.points} | dp.members
    groups = [_group_report(k, runs, baseline, margin) for k, runs in grouped.sorted_groups()
              if k not in shown_apart]
    docs = [(p.name, pytest_bench.load(p)) for p in sorted(pytest_files or [])]
    return Report(baseline=baseline, margin=margin, grouped=grouped, groups=groups,
                  shared_start=shared_start.load(results_dir), results_dir=results_dir,
                  pytest_docs=docs, retrieval_records=[
                      *grouped.other_kinds.get("retrieval", []), *(retrieval_records or [])],
                  record_count=len(records), scaling=series, data_parallel=dp,
                  commands=_commands(results_dir) if series or dp.found else [],
                  reference=find_reference(
                      groups, [r for rs in grouped.groups.values() for r in rs], margin))


def _commands(results_dir: Path) -> list[str]:
    """The commands a study ran (its commands.txt beside the records), in order."""
    path = results_dir / COMMANDS_FILE
    if not path.is_file():
        return []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return list(dict.fromkeys(lines))
