"""pytest-benchmark JSON: read its saved files into a table, and write bench records in it.

The format is what pytest-benchmark (5.x) saves with `--benchmark-json` or
`--benchmark-autosave`: `{"machine_info", "commit_info", "benchmarks": [...],
"datetime", "version"}`, each benchmark `{"group", "name", "fullname", "params",
"param", "extra_info", "options", "stats": {min, max, mean, stddev, rounds,
median, iqr, q1, q3, iqr_outliers, stddev_outliers, outliers, ld15iqr, hd15iqr,
ops, total, data, iterations}}`. Exported files load with
`pytest-benchmark compare FILE`.

Exported benchmarks (times in seconds, one benchmark per ok run):
`train_epoch` (every steady-state epoch is one round) and `first_epoch` (one
round: tracing/compilation included). Retrieval latency is not exported: the
records keep only its percentiles, and pytest-benchmark needs every round.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.report.runs import Run
from bench.report.tables import Column, Table, num

FORMAT_VERSION = "5.3.1"  # pytest-benchmark version whose format this writes


def _quartiles(data: list[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark computes them (Wikipedia methods 2 and 3)."""
    n = len(data)
    if n == 1:
        return data[0], data[0]
    if n % 2 == 0:
        return statistics.median(data[: n // 2]), statistics.median(data[n // 2:])
    k, r = n // 4, n % 4
    if r == 1:
        return 0.25 * data[k - 1] + 0.75 * data[k], 0.75 * data[3 * k] + 0.25 * data[3 * k + 1]
    return 0.75 * data[k] + 0.25 * data[k + 1], 0.25 * data[3 * k + 1] + 0.75 * data[3 * k + 2]


def bench_stats(data: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's `stats` object for these rounds (same definitions, in order)."""
    s = sorted(float(x) for x in data)
    mean = statistics.mean(s)
    sd = statistics.stdev(s) if len(s) > 1 else 0
    q1, q3 = _quartiles(s)
    iqr = q3 - q1
    sd_out = sum(1 for x in s if x < mean - sd or x > mean + sd)
    iqr_out = sum(1 for x in s if x < q1 - 1.5 * iqr or x > q3 + 1.5 * iqr)
    total = sum(s)
    ld = s[0] if len(s) == 1 else s[bisect.bisect_left(s, q1 - 1.5 * iqr)]
    hd = s[bisect.bisect_right(s, q3 + 1.5 * iqr) - 1]
    return {"min": s[0], "max": s[-1], "mean": mean, "stddev": sd, "rounds": len(s),
            "median": statistics.median(s), "iqr": iqr, "q1": q1, "q3": q3,
            "iqr_outliers": iqr_out, "stddev_outliers": sd_out,
            "outliers": f"{sd_out};{iqr_out}", "ld15iqr": ld, "hd15iqr": hd,
            "ops": len(s) / total if total else 0, "total": total,
            "data": [float(x) for x in data], "iterations": 1}


def _benchmark(run: Run, what: str, data: list[float]) -> dict[str, Any]:
    layers = "x".join(str(n) for n in run.key.layer_sizes)
    param = f"{run.impl}-{layers}-seed{run.seed}-r{run.repeat}"
    return {
        "group": f"{what} {run.key.slug()}",  # one comparable group (bench report's slug)
        "name": f"{what}[{param}]", "fullname": f"bench::{what}[{param}]",
        "params": {"impl": run.impl, "layers": layers, "seed": run.seed, "repeat": run.repeat},
        "param": param,
        "extra_info": {"run_id": run.run_id, "machine": run.key.machine, "gpu": run.key.gpu,
                       "device": run.device_name, "sync": run.sync,
                       "dataset_hash": run.key.dataset_hash, "commit": run.commit},
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": len(data),
                    "max_time": 0.0, "min_time": 0.0, "warmup": False},
        "stats": bench_stats(data),
    }


def export(runs: Sequence[Run], path: Path) -> int:
    """Write `runs` as one pytest-benchmark JSON file; returns the benchmarks written."""
    benchmarks = []
    for r in runs:
        if r.steady_epoch_s():
            benchmarks.append(_benchmark(r, "train_epoch", r.steady_epoch_s()))
        if not math.isnan(r.figure("first_epoch_s")):
            benchmarks.append(_benchmark(r, "first_epoch", [r.figure("first_epoch_s")]))
    first = runs[0] if runs else None
    doc = {
        "machine_info": {
            "node": "", "processor": first.key.machine if first else "",
            "machine": "", "python_version": first.versions.get("python", "") if first else "",
            "bench_machines": sorted({f"{r.key.machine}; gpu {r.key.gpu}" for r in runs}),
        },
        "commit_info": {"id": first.commit if first else "unknown",
                        "dirty": any(r.dirty for r in runs), "project": "deeprec-bench",
                        "branch": "", "time": None, "author_time": None},
        "benchmarks": benchmarks,
        # Deterministic: the latest start time among the records, not "now".
        "datetime": max((r.started_at for r in runs), default=""),
        "version": FORMAT_VERSION,
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return len(benchmarks)


def load(path: Path) -> dict[str, Any]:
    """One pytest-benchmark JSON file, checked enough to tabulate; UsageError otherwise."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read pytest-benchmark file {path}: {exc}") from None
    ok = isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list)
    if not ok or not all(isinstance(b, dict) and isinstance(b.get("stats"), dict)
                         for b in doc["benchmarks"]):
        raise UsageError(f"{path} is not a pytest-benchmark JSON file (no benchmarks/stats)")
    return doc


def provenance(docs: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """One line per file: where and when it was measured (machine, python, commit, date)."""
    lines = []
    for source, doc in docs:
        mi, ci = doc.get("machine_info") or {}, doc.get("commit_info") or {}
        cpu: dict[str, Any] = mi["cpu"] if isinstance(mi.get("cpu"), dict) else {}
        machine = cpu.get("brand_raw") or mi.get("processor") or mi.get("machine") or "?"
        dirty = " (dirty)" if ci.get("dirty") else ""
        system = f"{mi['system']}, " if mi.get("system") else ""
        lines.append(f"{source}: machine {machine}, {system}python "
                     f"{mi.get('python_version', '?')}, commit {ci.get('id', '?')}{dirty}, "
                     f"pytest-benchmark {doc.get('version', '?')}, {doc.get('datetime', '?')}")
    return lines


def table(docs: Sequence[tuple[str, dict[str, Any]]]) -> Table:
    """Rows per benchmark of each (source name, document): times shown in ms."""
    rows = []
    for source, doc in docs:
        cpu = (doc.get("machine_info") or {}).get("cpu") or {}
        machine = cpu.get("brand_raw") if isinstance(cpu, dict) else None
        commit = (doc.get("commit_info") or {}).get("id", "")
        for b in sorted(doc["benchmarks"], key=lambda b: (str(b.get("group")), str(b["name"]))):
            st = b["stats"]
            rows.append({"source": source, "machine": machine or "?", "commit": commit,
                         "group": b.get("group") or "", "name": b["name"],
                         **{k: st.get(k) for k in ("min", "median", "mean", "stddev", "max",
                                                   "rounds", "ops")}})
    cols = [Column("source", lambda r: str(r["source"])),
            Column("name", lambda r: str(r["name"])),
            Column("rounds", lambda r: str(r["rounds"])),
            *[Column(f"{k} (ms)", _ms(k)) for k in ("min", "median", "mean", "stddev", "max")],
            Column("ops/s", lambda r: num(r["ops"], 2))]
    return Table("pytest_benchmark", cols, rows)


def _ms(key: str):  # type: ignore[no-untyped-def]
    return lambda r: num(None if r[key] is None else 1000.0 * float(r[key]), 3)
