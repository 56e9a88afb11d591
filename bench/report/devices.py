"""Data parallel: N devices against one, for the report's section of that name.

Two sources:

- `<results>/devices_parity.json` (`bench parity --devices 2,4`, bench/parity/runner.py):
  each implementation from the shared initial weights on N devices against itself on
  one, in bench/report/shared_start.py's pair format (read with its `load`); every
  primary implementation that refuses `--devices` (bench/registry.py) gets a row too.
- Runs over several devices (`bench run --devices N`: spec.devices, so their own group)
  and their one-device baselines among the groups, within a *family* (same machine,
  device, dataset and spec apart from devices and batch size):
  - strong scaling, a fixed global batch B: the one-device group at batch B;
    efficiency T1 / (N x TN) of the median `train_step_ms` (the training tables' statistic);
  - weak scaling, a fixed per-device batch b = B / N: the one-device group at batch b;
    examples per second per device (`train_examples_per_s` / N) against one device's.

Groups over several devices are shown in this section only, and so is a one-device
group that serves only as a weak-scaling baseline (its batch size would otherwise make
an odd group of its own); a strong baseline is an ordinary run and keeps its own tables.
On a CPU the devices are simulated: the figures measure the mechanism's overhead.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import registry
from bench.report import shared_start
from bench.report.runs import GroupKey, Run
from bench.report.tables import Column, Row, Table, num
from bench.stats import spread

DEVICES_FILE = "devices_parity.json"  # written by `bench parity --devices N[,N...]`
STEP = "train_step_ms"
EXAMPLES = "train_examples_per_s"
SIMULATED = "simulated devices on a CPU: measures the mechanism's overhead, not a speed-up"
REAL = "real GPUs"
REFUSED = "refused"  # the parity table's verdict for an implementation with no path
_PER_GROUP = ("devices", "batch_size")  # what varies within a family


def devices_of(key: GroupKey) -> int:
    """The group's device count (spec.devices; absent means 1)."""
    return int(key.spec_dict().get("devices", 1))


def _batch(key: GroupKey) -> int:
    return int(key.spec_dict()["batch_size"])


def _family_id(key: GroupKey) -> tuple[Any, ...]:
    spec = tuple((k, v) for k, v in key.spec if k not in _PER_GROUP)
    return key.machine, key.gpu, key.device, key.dataset, key.dataset_hash, spec


def _median(runs: list[Run], impl: str, figure: str) -> float:
    return spread([r.figure(figure) for r in runs if r.impl == impl]).median


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan  # nan propagates; a zero or nan b has no ratio


@dataclass
class Family:
    """The multi-device groups of one family, matched with their one-device baselines."""

    key: GroupKey  # its first multi-device group (machine, device, dataset, spec)
    simulated: bool
    strong: list[Row] = field(default_factory=list)
    weak: list[Row] = field(default_factory=list)
    mechanisms: dict[str, str] = field(default_factory=dict)  # impl -> mechanism, collective

    @property
    def marker(self) -> str:
        return SIMULATED if self.simulated else REAL

    def csv_fields(self) -> dict[str, Any]:
        k = self.key
        spec = {n: json.loads(v) for n, v in k.spec if n not in _PER_GROUP}
        return {"machine": k.machine, "gpu": k.gpu, "device": k.device, "dataset": k.dataset,
                "dataset_hash": k.dataset_hash,
                "layer_sizes": "x".join(str(n) for n in k.layer_sizes),
                "spec": json.dumps(spec, sort_keys=True), "simulated": self.simulated}


@dataclass
class DataParallel:
    """Everything the section shows; `found` False when there is nothing to show."""

    parity: shared_start.SharedStart
    families: list[Family]
    members: set[GroupKey]  # groups shown here only
    unmatched: list[GroupKey]  # multi-device groups with no one-device baseline
    weak_only: int  # one-device groups among members

    @property
    def found(self) -> bool:
        return self.parity.found or bool(self.members)


def refusals() -> dict[str, str]:
    """Primary implementations with no data-parallel path, and why (bench/registry.py)."""
    return {name: registry.NO_DATA_PARALLEL.get(name, "no data-parallel path in this harness")
            for name in registry.PRIMARY if name not in registry.DATA_PARALLEL}


def _simulated(key: GroupKey, runs: list[Run]) -> bool:
    flags = [r.options.get("data_parallel", {}).get("simulated") for r in runs]
    known = [bool(f) for f in flags if f is not None]
    return any(known) if known else key.device != "gpu"


def _mechanism(runs: list[Run]) -> str:
    dp = runs[0].options.get("data_parallel") or {}
    if not dp.get("mechanism"):
        return "not recorded"
    sync = f", step sync: {dp['step_sync']}" if dp.get("step_sync") else ""
    return f"{dp['mechanism']}, collective: {dp.get('collective') or 'not recorded'}{sync}"


def _row(impl: str, n: int, runs: list[Run], base: list[Run]) -> Row:
    """What both scaling tables start with: the impl, N, its batches and run counts."""
    batch = _batch(runs[0].key)
    return {"impl": impl, "devices": n, "global_batch": batch, "per_device_batch": batch // n,
            "runs_1": sum(r.impl == impl for r in base),
            "runs_n": sum(r.impl == impl for r in runs)}


def _strong_row(impl: str, n: int, runs: list[Run], base: list[Run]) -> Row:
    t1, tn = _median(base, impl, STEP), _median(runs, impl, STEP)
    return {**_row(impl, n, runs, base), "step_ms_1": t1, "step_ms_n": tn,
            "speedup": _ratio(t1, tn), "efficiency": _ratio(t1, n * tn)}


def _weak_row(impl: str, n: int, runs: list[Run], base: list[Run]) -> Row:
    e1, en = _median(base, impl, EXAMPLES), _median(runs, impl, EXAMPLES) / n
    return {**_row(impl, n, runs, base), "examples_per_s_per_device_1": e1,
            "examples_per_s_per_device_n": en, "ratio": _ratio(en, e1)}


def find(groups: dict[GroupKey, list[Run]], results_dir: Path) -> DataParallel:
    """The section's content from the report's groups and the results dir's parity file."""
    ones = {(_family_id(k), _batch(k)): k for k in groups if devices_of(k) == 1}
    many = sorted((k for k in groups if devices_of(k) > 1), key=lambda k: k.sort_key())
    families: dict[tuple[Any, ...], Family] = {}
    strong_bases: set[GroupKey] = set()
    weak_bases: set[GroupKey] = set()
    unmatched: list[GroupKey] = []
    for key in many:
        n, runs, fid = devices_of(key), groups[key], _family_id(key)
        fam = families.setdefault(fid, Family(key, _simulated(key, runs)))
        by_impl: dict[str, list[Run]] = defaultdict(list)
        for r in runs:
            by_impl[r.impl].append(r)
        for impl, rs in sorted(by_impl.items()):
            fam.mechanisms.setdefault(impl, _mechanism(rs))
        strong, weak = ones.get((fid, _batch(key))), ones.get((fid, _batch(key) // n))
        for base, rows, make, seen in ((strong, fam.strong, _strong_row, strong_bases),
                                       (weak, fam.weak, _weak_row, weak_bases)):
            if base is None:
                continue
            seen.add(base)
            rows += [make(impl, n, runs, groups[base]) for impl in sorted(by_impl)
                     if any(r.impl == impl for r in groups[base])]
        if strong is None and weak is None:
            unmatched.append(key)
    for fam in families.values():
        fam.strong.sort(key=lambda r: (r["impl"], r["devices"]))
        fam.weak.sort(key=lambda r: (r["impl"], r["devices"]))
    weak_only = weak_bases - strong_bases
    return DataParallel(
        parity=shared_start.load(results_dir, DEVICES_FILE),
        families=[families[f] for f in sorted(families, key=repr)],
        members=set(many) | weak_only, unmatched=unmatched, weak_only=len(weak_only))


def parity_table(dp: DataParallel) -> Table:
    """Per implementation, layers and N: the 1-vs-N verdict and where the runs part; then
    one row per primary implementation that refuses --devices."""
    rows: list[Row] = [
        {"impl": p.implementation, "layers": "x".join(map(str, p.layer_sizes)),
         "devices": p.devices, "verdict": p.verdict, "expected": p.expected or None,
         "first_step_beyond_tolerance": p.first_step_beyond_tolerance,
         "worst_weight": p.worst_weight or None, "max_abs_loss_diff": p.max_abs_loss_diff,
         "loss_tolerance": p.loss_tolerance, "max_abs_weight_diff": p.max_abs_weight_diff,
         "weight_tolerance": p.weight_tolerance, "note": p.note}
        for p in sorted(dp.parity.pairs, key=lambda p: (p.implementation, p.layer_sizes,
                                                         p.devices))]
    rows += [{"impl": name, "layers": None, "devices": None, "verdict": REFUSED,
              "expected": None, "first_step_beyond_tolerance": None, "worst_weight": None,
              "max_abs_loss_diff": math.nan, "loss_tolerance": math.nan,
              "max_abs_weight_diff": math.nan, "weight_tolerance": math.nan, "note": why}
             for name, why in refusals().items()]
    return Table("data_parallel_parity", [
        Column("impl", lambda r: str(r["impl"])),
        _measured("layers", lambda r: str(r["layers"])),
        _measured("N", lambda r: str(r["devices"])),
        Column("verdict", shared_start.verdict_cell),
        _measured("where they part (step)",
                  lambda r: shared_start.step_text(r["first_step_beyond_tolerance"])),
        _measured("worst weight", lambda r: str(r["worst_weight"] or "–")),
        _measured("max Δ loss (abs)", lambda r: _with_tolerance(r, "loss")),
        _measured("max Δ weight (abs)", lambda r: _with_tolerance(r, "weight")),
        Column("note", lambda r: str(r["note"]) or "–"),
    ], rows)


def _measured(header: str, render: Callable[[Row], str]) -> Column:
    """A column of what a parity run measured: a dash on a refusal's row."""
    return Column(header, lambda r: "–" if r["verdict"] == REFUSED else render(r))


def _with_tolerance(row: Row, what: str) -> str:
    return (f"{shared_start.sci(row[f'max_abs_{what}_diff'])} "
            f"(tol {shared_start.sci(row[f'{what}_tolerance'])})")


_BATCHES = {"global_batch": "global batch", "per_device_batch": "per device"}


def _lead(fixed: str, varies: str) -> list[Column]:
    """impl, N, the batch held fixed, then the one that varies, and the runs behind each side."""
    return [Column("impl", lambda r: r["impl"]), Column("N", lambda r: str(r["devices"])),
            Column(_BATCHES[fixed], lambda r: str(r[fixed])),
            Column(_BATCHES[varies], lambda r: str(r[varies])),
            Column("runs (1 / N)", lambda r: f"{r['runs_1']} / {r['runs_n']}")]


def strong_table(fam: Family) -> Table:
    """Fixed global batch: median step time on 1 and N devices, speed-up and efficiency."""
    return Table("data_parallel_strong", [
        *_lead("global_batch", "per_device_batch"),
        Column("train_step_ms, 1 device", lambda r: num(r["step_ms_1"], 2)),
        Column("train_step_ms, N devices", lambda r: num(r["step_ms_n"], 2)),
        Column("speed-up T1 / TN", lambda r: num(r["speedup"], 2)),
        Column("efficiency T1 / (N x TN)", lambda r: num(r["efficiency"], 2)),
    ], fam.strong)


def weak_table(fam: Family) -> Table:
    """Fixed per-device batch: examples per second per device, on 1 and on N devices."""
    return Table("data_parallel_weak", [
        *_lead("per_device_batch", "global_batch"),
        Column("examples/s per device, 1 device",
               lambda r: num(r["examples_per_s_per_device_1"], 0)),
        Column("examples/s per device, N devices",
               lambda r: num(r["examples_per_s_per_device_n"], 0)),
        Column("N / 1", lambda r: num(r["ratio"], 2)),
    ], fam.weak)
