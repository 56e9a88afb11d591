"""Comparison tables of one group, as rows a markdown and a CSV writer both render.

A `Table` holds raw values per row (what the CSV gets, every float written with
`repr`, so lossless and byte-stable) and columns that know how to show those
values in markdown (fixed decimals, so byte-stable too).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.report.parity import Verdict
from bench.report.summary import ImplSummary
from bench.stats import Spread

Row = dict[str, Any]


def num(x: Any, digits: int) -> str:
    """`x` with fixed decimals, "n/a" when missing or nan."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def med_range(row: Row, prefix: str, digits: int) -> str:
    """ "median (min-max)" from a row's `<prefix>_median/_min/_max` values."""
    med = num(row.get(f"{prefix}_median"), digits)
    lo, hi = row.get(f"{prefix}_min"), row.get(f"{prefix}_max")
    if med == "n/a" or lo == hi:
        return med
    return f"{med} ({num(lo, digits)}–{num(hi, digits)})"


@dataclass(frozen=True)
class Column:
    """One markdown column and how it renders a row."""

    header: str
    render: Callable[[Row], str]


@dataclass
class Table:
    """Rows of raw values plus their markdown columns."""

    name: str  # CSV file stem, e.g. "training"
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)

    def markdown(self) -> str:
        """A GitHub-flavoured markdown table (pipes in cells escaped)."""
        head = [c.header for c in self.columns]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            cells = [c.render(row).replace("|", "\\|") for c in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def spread_fields(prefix: str, s: Spread) -> Row:
    """CSV fields of a Spread: median, min, q1, q3, max, n."""
    return {f"{prefix}_median": s.median, f"{prefix}_min": s.low, f"{prefix}_q1": s.q1,
            f"{prefix}_q3": s.q3, f"{prefix}_max": s.high, f"{prefix}_n": s.n}


def ratio(a: float, b: float) -> float:
    """a / b for a >= 0 and b > 0, else nan (a noise-negative compile time has no ratio)."""
    return a / b if a >= 0 and b > 0 else math.nan  # nan fails both comparisons


def training_table(summaries: dict[str, ImplSummary], baseline: str) -> Table:
    """Accuracy, compile, steady epoch and step times, throughput and memory per impl."""
    base = summaries.get(baseline)
    rows = []
    for impl, s in summaries.items():
        mean, lo, hi = s.accuracy
        row: Row = {"impl": impl, "seeds": len(s.seed_accuracy), "runs": len(s.runs),
                    "top100_accuracy_mean": mean, "top100_accuracy_ci95_low": lo,
                    "top100_accuracy_ci95_high": hi, "impl_vs_numpy_max_abs": s.impl_metric_gap}
        for prefix, sp in (("compile_s", s.compile_s), ("train_epoch_s", s.epoch_s),
                           ("train_step_ms", s.step_ms)):
            row.update(spread_fields(prefix, sp))
            ref = getattr(base, _SPREAD_ATTR[prefix]).median if base else math.nan
            row[f"{prefix}_ratio"] = ratio(sp.median, ref)
        row.update(spread_fields("train_examples_per_s", s.examples_per_s))
        row.update(spread_fields("peak_rss_mb", s.peak_rss_mb))
        row.update(spread_fields("peak_device_memory_mb", s.peak_device_mb))
        rows.append(row)
    cols = [
        Column("impl", lambda r: str(r["impl"])),
        Column("seeds", lambda r: str(r["seeds"])),
        Column("top-100 accuracy, mean [95% CI]", acc_cell),
        Column("compile_s", lambda r: med_range(r, "compile_s", 2)),
        Column(f"× {baseline}", lambda r: num(r["compile_s_ratio"], 2)),
        Column("train_epoch_s", lambda r: med_range(r, "train_epoch_s", 3)),
        Column(f"× {baseline}", lambda r: num(r["train_epoch_s_ratio"], 2)),
        Column("train_step_ms", lambda r: med_range(r, "train_step_ms", 2)),
        Column(f"× {baseline}", lambda r: num(r["train_step_ms_ratio"], 2)),
        Column("examples/s", lambda r: num(r["train_examples_per_s_median"], 0)),
        Column("peak_rss_mb", lambda r: num(r["peak_rss_mb_median"], 0)),
    ]
    if any(not math.isnan(r["peak_device_memory_mb_median"]) for r in rows):
        cols.append(Column("peak_device_mb", lambda r: num(r["peak_device_memory_mb_median"], 0)))
    return Table("training", cols, rows)


_SPREAD_ATTR = {"compile_s": "compile_s", "train_epoch_s": "epoch_s", "train_step_ms": "step_ms"}


def acc_cell(r: Row) -> str:
    """ "mean [low, high]" of a row's top100_accuracy_mean/_ci95_low/_ci95_high."""
    mean = num(r["top100_accuracy_mean"], 4)
    lo, hi = r["top100_accuracy_ci95_low"], r["top100_accuracy_ci95_high"]
    return mean if math.isnan(lo) else f"{mean} [{num(lo, 4)}, {num(hi, 4)}]"


def retrieval_table(summaries: dict[str, ImplSummary], baseline: str) -> Table:
    """Top-100 retrieval latency (p50, p99) and QPS per impl and batch size."""
    base = summaries.get(baseline)
    rows = []
    for impl, s in summaries.items():
        for batch, metrics in s.retrieval.items():
            ref = base.retrieval.get(batch, {}) if base else {}
            row: Row = {"impl": impl, "batch": batch}
            for m in ("p50_ms", "p99_ms", "qps"):
                row.update(spread_fields(f"retrieve_{m}", metrics[m]))
                ref_m = ref[m].median if m in ref else math.nan
                row[f"retrieve_{m}_ratio"] = ratio(metrics[m].median, ref_m)
            rows.append(row)
    cols = [
        Column("impl", lambda r: str(r["impl"])),
        Column("batch", lambda r: str(r["batch"])),
        Column("p50_ms", lambda r: med_range(r, "retrieve_p50_ms", 3)),
        Column(f"× {baseline}", lambda r: num(r["retrieve_p50_ms_ratio"], 2)),
        Column("p99_ms", lambda r: med_range(r, "retrieve_p99_ms", 3)),
        Column(f"× {baseline}", lambda r: num(r["retrieve_p99_ms_ratio"], 2)),
        Column("queries/s", lambda r: num(r["retrieve_qps_median"], 0)),
    ]
    return Table("retrieval_latency", cols, rows)


def parity_table(verdicts: Sequence[Verdict], summaries: dict[str, ImplSummary]) -> Table:
    """One row per implementation against the baseline: the TOST verdict and its numbers."""
    rows = []
    for v in verdicts:
        c = v.comparison
        rows.append({
            "impl": v.impl, "baseline": v.baseline, "seeds": c.n_a, "baseline_seeds": c.n_b,
            "design": c.design, "diff_mean": c.diff, "diff_ci90_low": v.ci90[0],
            "diff_ci90_high": v.ci90[1], "margin": v.margin, "p_tost": v.p_tost,
            "p_difference": v.p_diff, "baseline_seed_sd": v.baseline_sd, "verdict": v.verdict,
            "separation": v.separation, "seeds_needed": v.seeds_needed,
            "retrieve_agreement_min": summaries[v.impl].retrieve_agreement,
        })
    cols = [
        Column("impl", lambda r: str(r["impl"])),
        Column("seeds", lambda r: f"{r['seeds']} vs {r['baseline_seeds']} ({r['design']})"),
        Column("Δ accuracy", lambda r: signed(r["diff_mean"])),
        Column("90% CI of Δ", lambda r: f"[{signed(r['diff_ci90_low'])}, "
                                       f"{signed(r['diff_ci90_high'])}]"),
        Column("p (TOST)", lambda r: num(r["p_tost"], 3)),
        Column("p (Δ≠0)", lambda r: num(r["p_difference"], 3)),
        Column("baseline seed SD", lambda r: num(r["baseline_seed_sd"], 4)),
        Column("verdict", lambda r: f"**{r['verdict']}**"),
        Column("where they part", lambda r: r["separation"] or "–"),
        Column("seeds to settle it", _seeds_cell),
        Column("top-100 agreement", lambda r: num(r["retrieve_agreement_min"], 4)),
    ]
    return Table("parity", cols, rows)


def _seeds_cell(r: Row) -> str:
    """For inconclusive verdicts: about how many seeds per side would give a verdict."""
    if r["verdict"] != "inconclusive (need more seeds)":
        return "–"
    if min(r["seeds"], r["baseline_seeds"]) < 2:
        return "≥2 per side to estimate the spread"
    if r["seeds_needed"]:
        return f"≈{r['seeds_needed']} per side"
    if abs(r["diff_mean"]) >= r["margin"]:
        return "|Δ| ≥ margin: more seeds may show it different"
    return "over 200 per side at this spread"


def signed(x: float) -> str:
    """`x` with a sign and 4 decimals, "n/a" when nan."""
    return "n/a" if math.isnan(x) else f"{x:+.4f}"


def csv_text(tables: Sequence[tuple[Row, Table]]) -> str:
    """One CSV for tables of one kind across groups: group fields first, then row fields."""
    header: list[str] = []
    for group_fields, t in tables:
        for row in t.rows:
            for k in (*group_fields, *row):
                if k not in header:
                    header.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for group_fields, t in tables:
        for row in t.rows:
            merged = {**group_fields, **row}
            w.writerow([_csv_value(merged.get(k)) for k in header])
    return buf.getvalue()


def _csv_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(v) if isinstance(v, float) else str(v)
