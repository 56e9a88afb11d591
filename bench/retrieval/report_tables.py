"""The retrieval report's tables: which records are comparable, and their markdown tables.

Used by bench/retrieval/report.py (the random workload's section) and
bench/retrieval/report_trained.py (the trained workloads'). A record's
workload is "" for random vectors and its arrays' hash for trained ones
(bench/retrieval/trained.py); records of different workloads never share a
table.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from bench.retrieval.records import KIND, problem

OTHER_MACHINE = ("from another machine, seed or query pool than the newest record's; they are "
                 "not comparable with these")
REFERENCE = "faiss-flat"  # the exact-search reference ratios are taken against
RANDOM = ""  # workload_key of the random (Gaussian-mixture) records


def label(rec: Mapping[str, Any]) -> str:
    """Contender name plus its search params, e.g. "faiss-ivf nprobe=16"."""
    params = rec["spec"].get("params") or {}
    extra = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{rec['impl']} {extra}".strip()


def comparability_key(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """What must match for two records to share a table: machine, GPUs, seed, query pool."""
    env = rec.get("environment") or {}
    gpus = tuple(sorted(str(g.get("name") if isinstance(g, Mapping) else g)
                        for g in env.get("gpus") or []))
    spec = rec["spec"]
    return (env.get("cpu_model"), env.get("cpu_count_logical"), gpus, spec.get("seed"),
            spec.get("num_queries"), spec.get("generator"))


def workload_key(rec: Mapping[str, Any]) -> str:
    """RANDOM for random vectors; a trained workload's arrays hash (spec.workload)."""
    workload = rec["spec"].get("workload")
    return str(workload.get("arrays_hash")) if isinstance(workload, Mapping) else RANDOM


def readable(records: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]],
                                                            Counter[str]]:
    """The retrieval records bench.retrieval.records.problem can read, and the others counted."""
    left_out: Counter[str] = Counter()
    recs = []
    for rec in records:
        why = problem(rec) if rec.get("kind") == KIND else "other kind"
        if why is None:
            recs.append(rec)
        elif why != "other kind":
            left_out[f"malformed record ({why})"] += 1
    return recs, left_out


def select(records: Iterable[Mapping[str, Any]], workload: str = RANDOM) -> tuple[
        list[Mapping[str, Any]], Counter[str]]:
    """One workload's records comparable with its newest one, last per (contender, spec).

    Returns them and the other records left out, counted by reason: another
    machine, seed or query pool (tables and ratios never mix those), or, for
    the random workload only (so each is counted once), a record
    bench.retrieval.records.problem cannot read (foreign or damaged).
    Records of other workloads are neither selected nor counted.
    """
    recs, left_out = readable(records)
    if workload != RANDOM:
        left_out = Counter()
    recs = [r for r in recs if workload_key(r) == workload]
    if not recs:
        return [], left_out
    newest = comparability_key(max(recs, key=lambda r: str(r.get("started_at"))))
    by_key: dict[str, Mapping[str, Any]] = {}
    for rec in recs:
        if comparability_key(rec) == newest:
            by_key[rec["spec_hash"]] = rec
        else:
            left_out[OTHER_MACHINE] += 1
    return list(by_key.values()), left_out


def num(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def order(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    return (rec["impl_info"].get("exact") is False, rec["impl"],
            sorted((rec["spec"].get("params") or {}).items()))


def _cell(rec: Mapping[str, Any] | None) -> str:
    if rec is None:
        return "-"
    if rec["status"] != "ok":
        return rec["status"]
    f = rec["figures"]
    # Rounded down, so a recall just under 1 never prints as 1.00.
    flag = "" if f.get("recall") is None or f["recall"] >= 1.0 else \
        f" (r={math.floor(f['recall'] * 1000) / 1000:.3f})"
    return num(f.get("qps"), 1) + flag + _clamped(rec)


def _clamped(rec: Mapping[str, Any]) -> str:
    """' (nprobe ran 42)' where the contender ran a param other than asked (faiss clamps)."""
    resolved = rec["impl_info"].get("resolved_options") or {}
    notes = [f"{k} ran {resolved[k]}" for k, v in sorted((rec["spec"].get("params") or {}).items())
             if k in resolved and resolved[k] != v]
    return f" ({', '.join(notes)})" if notes else ""


def pivot(recs: list[Mapping[str, Any]], batch: int) -> list[str]:
    """Rows: contender (+params); columns: candidate counts; cells: QPS at `batch`."""
    ns = sorted({r["spec"]["candidates"] for r in recs})
    at = {(label(r), r["spec"]["candidates"]): r for r in recs if r["spec"]["batch"] == batch}
    names = list(dict.fromkeys(label(r) for r in sorted(recs, key=order)))
    rows = [[n] + [_cell(at.get((n, c))) for c in ns] for n in names]
    return md_table(["contender"] + [f"N={c:,}" for c in ns], rows)


def ratios(recs: list[Mapping[str, Any]]) -> list[str]:
    """Exact contenders' QPS / faiss-flat's QPS at the largest N and batch, plus memory."""
    n, batch = max(r["spec"]["candidates"] for r in recs), max(r["spec"]["batch"] for r in recs)
    here = [r for r in recs if r["spec"]["candidates"] == n and r["spec"]["batch"] == batch]
    ref = next((r for r in here if r["impl"] == REFERENCE and r["status"] == "ok"), None)
    if ref is None:
        return [f"No ok {REFERENCE} record at N={n:,}, batch {batch}: no ratios.", ""]
    invocations = {r.get("invocation") for r in here}
    same_run = len(invocations) == 1 and None not in invocations
    where = "same run" if same_run else "from more than one run: compare with care"
    rows = []
    for r in sorted(here, key=order):
        f = r["figures"]
        ratio = f["qps"] / ref["figures"]["qps"] if r["status"] == "ok" else None
        exact = bool(r["impl_info"].get("exact"))
        verdict = "-" if ratio is None or not exact else (
            "within 1.5x" if ratio >= 1 / 1.5 else "slower")
        rows.append([label(r), "yes" if r["impl_info"].get("exact") else "no",
                     num(f.get("qps"), 1), num(ratio, 2) if ratio else r["status"], verdict,
                     num(f.get("recall"), 4), num(f.get("peak_rss_delta_mb"), 0),
                     num(f.get("index_rss_mb"), 0)])
    head = ["contender", "exact", "QPS", f"QPS / {REFERENCE}", "target", "recall",
            "search peak MB", "index MB"]
    return [f"At N={n:,}, batch {batch} ({where}):", ""] + md_table(head, rows)


def full_table(recs: list[Mapping[str, Any]]) -> list[str]:
    """Every contender x N x batch: QPS, latency percentiles, recall, memory, build."""
    head = ["contender", "N", "batch", "QPS", "p50 ms", "p95 ms", "p99 ms", "calls",
            "recall", "recall (ids)", "search peak MB", "index MB", "build s", "first call s"]
    rows = []
    key = lambda r: (r["spec"]["batch"], r["spec"]["candidates"], order(r))  # noqa: E731
    for r in sorted(recs, key=key):
        f = r["figures"]
        if r["status"] != "ok":
            rows.append([label(r), f"{r['spec']['candidates']:,}", str(r["spec"]["batch"]),
                         r["status"]] + ["-"] * (len(head) - 4))
            continue
        rows.append([label(r), f"{r['spec']['candidates']:,}", str(r["spec"]["batch"]),
                     num(f.get("qps"), 1), num(f.get("p50_ms"), 3), num(f.get("p95_ms"), 3),
                     num(f.get("p99_ms"), 3), str(f.get("calls")), num(f.get("recall"), 4),
                     num(f.get("recall_ids"), 4), num(f.get("peak_rss_delta_mb"), 0),
                     num(f.get("index_rss_mb"), 0), num(f.get("build_s"), 3),
                     num(f.get("first_call_s"), 3)])
    return md_table(head, rows)



def groups(recs: list[Mapping[str, Any]]) -> dict[tuple[int, int], list[Mapping[str, Any]]]:
    """Records per (dim, k), in order: each pair is one subsection."""
    out: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for r in recs:
        out.setdefault((r["spec"]["dim"], r["spec"]["k"]), []).append(r)
    return dict(sorted(out.items()))


def provenance(recs: list[Mapping[str, Any]], command: str | None,
               left_out: Counter[str]) -> list[str]:
    """Produced-by commands, machine, packages, load, record and left-out counts."""
    commands = sorted({str(r["command"]) for r in recs if r.get("command")})
    if command:
        commands = [command]
    env = recs[0].get("environment", {})
    commits = sorted({str((r.get("git") or {}).get("commit"))[:10] for r in recs})
    lines = ["Produced by:", ""] + [f"    {c}" for c in commands] + [""]
    lines.append(f"Machine: {env.get('cpu_model', '?')}, {env.get('cpu_count_logical', '?')} "
                 f"logical CPUs, {env.get('memory_gb', '?')} GB; commit(s) {', '.join(commits)}.")
    pk = env.get("packages", {})
    lines.append("Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(pk.items())) + ".")
    loads = [r["worker"]["loadavg_1m"] for r in recs if (r.get("worker") or {}).get("loadavg_1m")
             is not None]
    if loads:
        lines.append(f"1-minute load average when workers started: {min(loads):.1f} to "
                     f"{max(loads):.1f} (on {env.get('cpu_count_logical', '?')} CPUs).")
    failed = sum(r["status"] != "ok" for r in recs)
    lines.append(f"Records: {len(recs)} ({failed} not ok).")
    lines += [f"Left out: {n} record(s) {why}." for why, n in sorted(left_out.items())]
    return lines + [""]
