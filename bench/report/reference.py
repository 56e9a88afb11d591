"""Against the reference program: keras-reference* next to keras-jax, by distribution over seeds.

The keras-reference implementations run the keras-io program's own pipeline
(its preprocessing, its tf.data split, Keras's own initialisers), so a seed of
theirs shares neither weights nor split with a cache-fed implementation's seed
of the same number: they are compared by Welch's test over seeds (parity.py's
pairing rule), never seed by seed. Per comparable group holding both, three
tables: accuracy (the harness's numpy metric, the implementation's own metric
and what separates them, the TOST verdict), cost (data preparation, build,
epochs), and where the program's published single runs fall in the
reference's own distribution over seeds. Everything is sorted, so identical
records give identical bytes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bench.report.parity import Verdict, verdict
from bench.report.published import published_accuracy
from bench.report.runs import Run
from bench.report.summary import ACCURACY, ACCURACY_IMPL, ImplSummary
from bench.report.tables import (
    Column,
    Row,
    Table,
    acc_cell,
    med_range,
    num,
    ratio,
    signed,
    spread_fields,
)
from bench.stats import spread, t_ppf

if TYPE_CHECKING:  # build.py imports this module to build the section
    from bench.report.group import GroupReport

PREFIX = "keras-reference"  # keras-reference, keras-reference-tf, keras-reference-torch
PRIMARY = "keras-jax"  # the cache-fed Keras model on the reference's backend
TITLE = "Against the reference program"
PLOT_NAME = "against-reference"  # plots/<PLOT_NAME>.png
# What keras-reference records in impl_info.resolved_options about the candidate set's NaN
# row: how many rows, whether its backend's top-k returns one, for what share of queries.
NAN_OPTIONS = ("nan_candidate_rows", "topk_returns_nan_row", "topk_nan_row_query_share")


def is_reference(impl: str) -> bool:
    return impl.startswith(PREFIX)


@dataclass
class ReferenceGroup:
    """One comparable group holding keras-reference* and keras-jax runs."""

    group: GroupReport
    references: list[str]  # keras-reference* names present, sorted
    verdicts: dict[str, Verdict]  # reference name -> its verdict against keras-jax
    accuracy: Table
    cost: Table
    published: float | None  # the published run for this spec, None when not its spec
    placement: Table

    def seed_values(self) -> dict[str, list[float]]:
        """Per implementation shown (keras-jax first), its per-seed numpy accuracies."""
        s = self.group.summaries
        return {i: [s[i].seed_accuracy[k] for k in s[i].seeds] for i in self.impls}

    @property
    def impls(self) -> list[str]:
        return [PRIMARY, *self.references]

    def tables(self) -> list[Table]:
        """Accuracy, cost, published-run placement: in this order, in every group."""
        return [self.accuracy, self.cost, self.placement]


@dataclass
class ReferenceSection:
    """The section; `found` False (no keras-reference* runs): the report omits it."""

    found: bool
    groups: list[ReferenceGroup] = field(default_factory=list)
    alone: list[str] = field(default_factory=list)  # slugs: reference runs, no keras-jax


def find_reference(groups: Sequence[GroupReport], all_runs: Sequence[Run],
                   margin: float) -> ReferenceSection:
    """The section over the report's groups; `all_runs`: every ok run (is there any?)."""
    if not any(is_reference(r.impl) for r in all_runs):
        return ReferenceSection(found=False)
    out = ReferenceSection(found=True)
    for g in groups:
        refs = sorted(i for i in g.summaries if is_reference(i))
        if refs and PRIMARY in g.summaries:
            out.groups.append(_group(g, refs, margin))
        elif refs:
            out.alone.append(g.slug)
    return out


def _group(g: GroupReport, refs: list[str], margin: float) -> ReferenceGroup:
    base = g.summaries[PRIMARY]
    verdicts = {r: verdict(g.summaries[r], base, margin, g.key.split) for r in refs}
    published = published_accuracy(g.key.spec_dict())
    return ReferenceGroup(g, refs, verdicts, accuracy_table(g.summaries, refs, verdicts),
                          cost_table(g.summaries), published,
                          placement_table(g.summaries, refs, published))


def _per_seed_mean(runs: Sequence[Run], value: Callable[[Run], float]) -> float:
    """Mean over seeds of each seed's mean over repeats (nan values dropped)."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        v = value(r)
        if not math.isnan(v):
            by_seed[r.seed].append(v)
    return float(np.mean([np.mean(v) for v in by_seed.values()])) if by_seed else math.nan


def _options(runs: Sequence[Run]) -> str:
    """What the runs' resolved options say about the NaN candidate row, e.g.
    "nan_candidate_rows=1"; "" when they say nothing."""
    parts = []
    for name in NAN_OPTIONS:
        values = [r.options[name] for r in runs if r.options.get(name) is not None]
        numeric = [float(v) for v in values if isinstance(v, int | float)
                   and not isinstance(v, bool)]
        if len(set(numeric)) > 3:  # a share that varies by run: its range
            parts.append(f"{name}={min(numeric):.3g}–{max(numeric):.3g}")
        elif values:
            seen = sorted({f"{v:.3g}" if isinstance(v, float) else str(v) for v in values})
            parts.append(f"{name}={'/'.join(seen)}")
    return "; ".join(parts)


def accuracy_table(summaries: dict[str, ImplSummary], refs: list[str],
                   verdicts: dict[str, Verdict]) -> Table:
    """keras-jax, then each reference: numpy accuracy, own metric, own - numpy, verdict."""
    rows = []
    for impl in [PRIMARY, *refs]:
        s = summaries[impl]
        mean, lo, hi = s.accuracy
        row: Row = {"impl": impl, "seeds": len(s.seed_accuracy), "runs": len(s.runs),
                    "shared_start": s.shared_start, "top100_accuracy_mean": mean,
                    "top100_accuracy_ci95_low": lo, "top100_accuracy_ci95_high": hi,
                    "own_metric_mean": _per_seed_mean(s.runs, lambda r: r.figure(ACCURACY_IMPL)),
                    "own_minus_numpy_mean": _per_seed_mean(
                        s.runs, lambda r: r.figure(ACCURACY_IMPL) - r.figure(ACCURACY)),
                    "nan_row_options": _options(s.runs)}
        v = verdicts.get(impl)
        if v is not None:
            c = v.comparison
            row.update({"vs": v.baseline, "design": c.design, "diff_mean": c.diff,
                        "diff_ci90_low": v.ci90[0], "diff_ci90_high": v.ci90[1],
                        "margin": v.margin, "p_tost": v.p_tost, "verdict": v.verdict})
        rows.append(row)
    return Table("reference_accuracy", [
        Column("impl", lambda r: str(r["impl"])),
        Column("seeds", lambda r: str(r["seeds"])),
        Column("top-100 accuracy (numpy), mean [95% CI]", acc_cell),
        Column("own metric, mean", lambda r: num(r["own_metric_mean"], 4)),
        Column("own − numpy, mean", lambda r: signed(r["own_minus_numpy_mean"])),
        Column("NaN candidate row", lambda r: r["nan_row_options"] or "–"),
        Column(f"vs {PRIMARY}", _verdict_cell),
    ], rows)


def _verdict_cell(r: Row) -> str:
    if "verdict" not in r:
        return "–"
    return (f"**{r['verdict']}** ({r['design']}: Δ {signed(r['diff_mean'])}, 90% CI "
            f"[{signed(r['diff_ci90_low'])}, {signed(r['diff_ci90_high'])}], margin "
            f"±{r['margin']:g}, p (TOST) {num(r['p_tost'], 3)})")


_COST = ("cache_load_s", "prepare_s", "build_s", "first_epoch_s", "train_epoch_s")


def _data_prep_s(r: Run) -> float:
    """Data preparation of one run: loading the cache plus the impl's own preparation."""
    parts = [v for v in (r.figure("cache_load_s"), r.figure("prepare_s")) if not math.isnan(v)]
    return math.fsum(parts) if parts else math.nan


def cost_table(summaries: dict[str, ImplSummary]) -> Table:
    """Per implementation of the group: per-run figures as median (min–max), with ratios."""
    base = summaries[PRIMARY]
    base_prep = spread([_data_prep_s(r) for r in base.runs]).median
    base_epoch = spread([r.figure("train_epoch_s") for r in base.runs]).median
    rows = []
    for impl, s in summaries.items():
        row: Row = {"impl": impl, "runs": len(s.runs)}
        for name in _COST:
            row.update(spread_fields(name, spread([r.figure(name) for r in s.runs])))
        row.update(spread_fields("data_prep_s", spread([_data_prep_s(r) for r in s.runs])))
        row["data_prep_s_ratio"] = ratio(row["data_prep_s_median"], base_prep)
        row["train_epoch_s_ratio"] = ratio(row["train_epoch_s_median"], base_epoch)
        rows.append(row)
    return Table("reference_cost", [
        Column("impl", lambda r: str(r["impl"])),
        Column("runs", lambda r: str(r["runs"])),
        Column("cache_load_s", lambda r: med_range(r, "cache_load_s", 3)),
        Column("prepare_s", lambda r: med_range(r, "prepare_s", 3)),
        Column(f"data preparation × {PRIMARY}", lambda r: num(r["data_prep_s_ratio"], 1)),
        Column("build_s", lambda r: med_range(r, "build_s", 2)),
        Column("first_epoch_s", lambda r: med_range(r, "first_epoch_s", 2)),
        Column("train_epoch_s", lambda r: med_range(r, "train_epoch_s", 3)),
        Column(f"epoch × {PRIMARY}", lambda r: num(r["train_epoch_s_ratio"], 2)),
    ], rows)


def placement(values: Sequence[float], published: float) -> Row:
    """Where one published value falls among `values` (one run per seed).

    z is (published - mean) / sd; the 95% prediction interval for one more run is
    mean +- t(0.975, n-1) * sd * sqrt(1 + 1/n); nan both with fewer than 2 values.
    """
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    half = t_ppf(0.975, n - 1) * sd * math.sqrt(1 + 1 / n) if n > 1 else math.nan
    lo, hi = (float(x.min()), float(x.max())) if n else (math.nan, math.nan)
    return {"published": published, "seeds": n, "mean": mean, "sd": sd,
            "z": (published - mean) / sd if sd > 0 else math.nan,
            "seed_min": lo, "seed_max": hi, "in_seed_range": bool(lo <= published <= hi),
            "pi95_low": mean - half, "pi95_high": mean + half,
            "in_pi95": None if math.isnan(half) else bool(abs(published - mean) <= half)}


def single_runs(runs: Sequence[Run]) -> list[float]:
    """One run's numpy accuracy per seed (its lowest repeat), in seed order.

    A published figure is one run, so it is placed among single runs: a seed's mean over
    repeats varies less than one run does, and would narrow the interval.
    """
    first: dict[int, Run] = {}
    for r in runs:
        if not math.isnan(r.figure(ACCURACY)) and (r.seed not in first
                                                   or r.repeat < first[r.seed].repeat):
            first[r.seed] = r
    return [first[s].figure(ACCURACY) for s in sorted(first)]


def placement_table(summaries: dict[str, ImplSummary], refs: list[str],
                    published: float | None) -> Table:
    """Each reference's distribution over seeds against the published run (none: no rows)."""
    rows = [] if published is None else [
        {"impl": i, **placement(single_runs(summaries[i].runs), published)} for i in refs]
    return Table("reference_published", [
        Column("impl", lambda r: str(r["impl"])),
        Column("published run", lambda r: num(r["published"], 3)),
        Column("seeds: mean ± SD", lambda r: f"{r['seeds']}: {num(r['mean'], 4)} ± "
                                             f"{num(r['sd'], 4)}"),
        Column("z of the published run", lambda r: num(r["z"], 2)),
        Column("seeds' range", lambda r: f"{num(r['seed_min'], 4)}–{num(r['seed_max'], 4)} "
                                         f"({_inside(r['in_seed_range'])})"),
        Column("95% prediction interval", lambda r: f"[{num(r['pi95_low'], 4)}, "
                                                    f"{num(r['pi95_high'], 4)}] "
                                                    f"({_inside(r['in_pi95'])})"),
    ], rows)


def _inside(flag: bool | None) -> str:
    return "n/a" if flag is None else ("inside" if flag else "outside")


_INTRO = (
    "`keras-reference*` runs the keras-io program's own pipeline: its preprocessing inside the "
    "run (timed as `prepare_s`), its tf.data split and Keras's own initialisers seeded by the "
    "run's seed. It shares neither initial weights nor split with a cache-fed implementation's "
    "seed of the same number, so it is compared with `{primary}` by distribution over seeds "
    "(Welch's test, TOST at the report's margin), never seed by seed. Accuracy is the "
    "harness's numpy top-100 on each run's exported embeddings, the same code for every "
    "implementation; `own metric` is what the implementation computed itself (for "
    "keras-reference, the reference's `sparse_top_k_categorical_accuracy` through its "
    "backend's top_k) and `own − numpy` what separates the two on the same runs; `NaN "
    "candidate row` is what the run recorded about the candidate set's 0/0 row "
    "(`impl_info.resolved_options`).")


def markdown(section: ReferenceSection, plot_link: str | None) -> list[str]:
    """The section's lines (called only when `section.found`)."""
    lines = ["", f"## {TITLE}", "", _INTRO.format(primary=PRIMARY)]
    if plot_link is not None and section.groups:
        lines += ["", f"![accuracy distributions]({plot_link})"]
    if not section.groups:
        lines += ["", f"No comparable group holds both keras-reference* and {PRIMARY} runs."]
    lines += [f"- Group [{slug}](#{slug}): keras-reference* runs without {PRIMARY} runs of the "
              "same spec, so nothing to compare them with." for slug in section.alone]
    for rg in section.groups:
        lines += _group_lines(rg)
    return lines


def _group_lines(rg: ReferenceGroup) -> list[str]:
    k = rg.group.key
    lines = ["", f"### Layers {k.layer_sizes} on {k.machine} ({k.device})", "",
             f"Group [{rg.group.slug}](#{rg.group.slug}), spec.split `{k.split}`.", "",
             rg.accuracy.markdown(), "",
             "Cost per run, `median (min–max)` over runs: data preparation is `cache_load_s` "
             "(loading the shared cache) plus `prepare_s` (the implementation's own "
             f"preparation); `epoch × {PRIMARY}` compares the per-run `train_epoch_s`.", "",
             rg.cost.markdown(), ""]
    if rg.published is None:
        return lines + ["The published single runs were made with another spec "
                        "(or depth) than this group's: not placed."]
    lines += [f"The published single run of this depth ({rg.published:.3f}) against each "
              "reference's own distribution over seeds:", "", rg.placement.markdown(), ""]
    if k.split == "seed":
        return lines + ["Each seed here ran on its own split, so the distribution carries the "
                        "split's variance, as a comparison with a single run on another split "
                        "needs."]
    return lines + ["Every seed here ran on one fixed split (keras-reference with spec.split "
                    "`cache`: its own seed-42 shuffle, the reference program's setting), so the "
                    "distribution carries the initial weights' variance only: a single run on "
                    "another split may fall further out than this placement suggests."]
