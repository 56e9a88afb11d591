"""The shared-start, step-level parity result, when the results dir holds one.

Implementations of one seed load the same initial weights and train K steps
on identical batches; the parity tests (tests/impls) compare their per-step
losses and final weights. The report shows that result when the file
`<results dir>/shared_start_parity.json` exists, in this format:

    {"steps": int, "seed": int, "layer_sizes": [int, ...],
     "pairs": [{"impl": str, "baseline": str,
                "verdict": "equivalent" | "different",
                "max_abs_loss_diff": float, "loss_tolerance": float,
                "first_step_beyond_tolerance": int | null,
                "max_abs_weight_diff": float, "weight_tolerance": float,
                "worst_weight": str | null, "layer_sizes": [int, ...],
                "expected": str | null, "note": str}]}

`expected` is the known cause of a `different` verdict (bench/parity/runner.py's
KNOWN_DIFFERENCES): the report shows it, and `bench report --check` fails only
on a `different` without one. bench/report/devices.py reads its 1-vs-N file
with the same `load` (pairs there add "implementation" and "devices").
Without the file the report says the result is not measured in these records.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.report.parity import DIFFERENT, EQUIVALENT
from bench.report.tables import Column, Table, num

FILE_NAME = "shared_start_parity.json"


@dataclass(frozen=True)
class Pair:
    """One implementation against the baseline after K shared-start steps."""

    impl: str
    baseline: str
    verdict: str
    max_abs_loss_diff: float
    loss_tolerance: float
    first_step_beyond_tolerance: int | None
    max_abs_weight_diff: float
    weight_tolerance: float
    note: str
    worst_weight: str = ""
    layer_sizes: tuple[int, ...] = ()
    expected: str = ""  # the known cause of a `different` verdict
    implementation: str = ""  # 1-vs-N pairs: the implementation (impl is "name xN")
    devices: int = 1  # 1-vs-N pairs: N

    @property
    def unexplained(self) -> bool:
        """A `different` verdict with no known cause: what `bench report --check` fails on."""
        return self.verdict == DIFFERENT and not self.expected


@dataclass
class SharedStart:
    """The file's content, or nothing (`found` False)."""

    found: bool = False
    steps: int = 0
    seed: int = 0
    layer_sizes: tuple[int, ...] = ()
    pairs: list[Pair] = field(default_factory=list)
    devices: tuple[int, ...] = ()  # 1-vs-N files: every N
    rules: tuple[str, ...] = ()  # the loss and weight rules the verdicts applied
    failed: list[str] = field(default_factory=list)  # workers that failed: no pair


def _float(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    return float(v) if isinstance(v, int | float) else math.nan


def _pair(p: dict[str, Any]) -> Pair:
    """One pair, its verdict and cause checked: --check must not pass what it cannot read."""
    if p["verdict"] not in (EQUIVALENT, DIFFERENT):
        raise ValueError(f"pair {p.get('impl')!r}: unknown verdict {p['verdict']!r}")
    if not isinstance(p.get("expected") or "", str):
        raise TypeError(f"pair {p.get('impl')!r}: expected is not a text: {p['expected']!r}")
    return Pair(impl=str(p["impl"]), baseline=str(p["baseline"]), verdict=str(p["verdict"]),
                max_abs_loss_diff=_float(p, "max_abs_loss_diff"),
                loss_tolerance=_float(p, "loss_tolerance"),
                first_step_beyond_tolerance=p.get("first_step_beyond_tolerance"),
                max_abs_weight_diff=_float(p, "max_abs_weight_diff"),
                weight_tolerance=_float(p, "weight_tolerance"),
                note=str(p.get("note") or ""), worst_weight=str(p.get("worst_weight") or ""),
                layer_sizes=tuple(int(n) for n in p.get("layer_sizes") or ()),
                expected=str(p.get("expected") or ""),
                implementation=str(p.get("implementation") or p["impl"]),
                devices=int(p.get("devices", 1)))


def load(results_dir: Path, file_name: str = FILE_NAME) -> SharedStart:
    """Read `<results_dir>/<file_name>`; UsageError when it is malformed."""
    path = results_dir / file_name
    if not path.exists():
        return SharedStart()
    try:
        doc = json.loads(path.read_text())
        pairs = [_pair(p) for p in doc["pairs"]]
        devices = doc.get("devices") or []
        counts = tuple(int(n) for n in (devices if isinstance(devices, list) else [devices]))
        if not isinstance(doc.get("failed") or [], list):
            raise TypeError(f"failed is not a list: {doc['failed']!r}")
        pairs.sort(key=lambda p: (p.baseline, p.impl, p.layer_sizes))
        return SharedStart(found=True, steps=int(doc.get("steps", 0)),
                           seed=int(doc.get("seed", 0)),
                           layer_sizes=tuple(doc.get("layer_sizes") or ()), pairs=pairs,
                           devices=counts, failed=[str(f) for f in doc.get("failed") or []],
                           rules=tuple(str(doc[k]) for k in ("loss_rule", "weight_rule")
                                       if k in doc))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"cannot read {path}: {exc!r}") from None


def table(result: SharedStart) -> Table:
    """One row per pair: verdict, the largest loss and weight gaps against their tolerances."""
    rows = [{"impl": p.impl, "baseline": p.baseline, "verdict": p.verdict,
             "max_abs_loss_diff": p.max_abs_loss_diff, "loss_tolerance": p.loss_tolerance,
             "first_step_beyond_tolerance": p.first_step_beyond_tolerance,
             "max_abs_weight_diff": p.max_abs_weight_diff,
             "weight_tolerance": p.weight_tolerance, "expected": p.expected or None,
             "note": p.note} for p in result.pairs]
    cols = [
        Column("impl", lambda r: str(r["impl"])),
        Column("vs", lambda r: str(r["baseline"])),
        Column("max Δ loss (abs)", lambda r: f"{sci(r['max_abs_loss_diff'])} "
                                        f"(tol {sci(r['loss_tolerance'])})"),
        Column("first step beyond", lambda r: step_text(r["first_step_beyond_tolerance"])),
        Column("max Δ weight (abs)", lambda r: f"{sci(r['max_abs_weight_diff'])} "
                                          f"(tol {sci(r['weight_tolerance'])})"),
        Column("verdict", verdict_cell),
        Column("note", lambda r: str(r["note"]) or "–"),
    ]
    return Table("shared_start_parity", cols, rows)


def verdict_cell(row: dict[str, Any]) -> str:
    """The verdict in bold, "(expected)" after a `different` with a known cause."""
    return f"**{row['verdict']}**" + (" (expected)" if row.get("expected") else "")


def sci(x: float) -> str:
    return num(x, 0) if math.isnan(x) else f"{x:.2e}"


def step_text(step: int | None) -> str:
    """A 0-based step index, or a dash when no step left the tolerance."""
    return "–" if step is None else str(step)
