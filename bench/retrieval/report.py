"""The retrieval section of the report: markdown tables and plots from stored records only.

    from bench.retrieval.report import write_section
    markdown = write_section(records, Path("results/retrieval"))

writes `retrieval.md` (and returns its text) and `plots/retrieval-*.png` in
the output directory: per (dim, k) a QPS pivot at the largest batch, the
ratio of every exact contender's QPS to faiss-flat's at the largest
candidate count, and a full table (QPS, latency p50/p95/p99, recall, peak
memory, build time) for every contender, candidate count and batch; a
log-log latency-vs-candidates plot and a recall-vs-QPS plot of the
approximate contenders. The same records always give the same bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.retrieval.records import KIND, problem
from bench.store import atomic_write

OTHER_MACHINE = ("from another machine, seed or query pool than the newest record's; they are "
                 "not comparable with these")
REFERENCE = "faiss-flat"  # the exact-search reference ratios are taken against
SECTION_FILE = "retrieval.md"


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


def select(records: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], Counter[str]]:
    """The retrieval records comparable with the newest one, last per (contender, spec).

    Returns them and the other retrieval records left out, counted by reason:
    another machine, seed or query pool (tables and ratios never mix those), or
    a record bench.retrieval.records.problem cannot read (foreign or damaged).
    """
    left_out: Counter[str] = Counter()
    recs = []
    for rec in records:
        why = problem(rec) if rec.get("kind") == KIND else "other kind"
        if why is None:
            recs.append(rec)
        elif why != "other kind":
            left_out[f"malformed record ({why})"] += 1
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


def latest(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`select`'s records (the left-out count dropped)."""
    return select(records)[0]


def _num(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def _order(rec: Mapping[str, Any]) -> tuple[Any, ...]:
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
    return _num(f.get("qps"), 1) + flag + _clamped(rec)


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
    names = list(dict.fromkeys(label(r) for r in sorted(recs, key=_order)))
    rows = [[n] + [_cell(at.get((n, c))) for c in ns] for n in names]
    return _md_table(["contender"] + [f"N={c:,}" for c in ns], rows)


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
    for r in sorted(here, key=_order):
        f = r["figures"]
        ratio = f["qps"] / ref["figures"]["qps"] if r["status"] == "ok" else None
        exact = bool(r["impl_info"].get("exact"))
        verdict = "-" if ratio is None or not exact else (
            "within 1.5x" if ratio >= 1 / 1.5 else "slower")
        rows.append([label(r), "yes" if r["impl_info"].get("exact") else "no",
                     _num(f.get("qps"), 1), _num(ratio, 2) if ratio else r["status"], verdict,
                     _num(f.get("recall"), 4), _num(f.get("peak_rss_delta_mb"), 0),
                     _num(f.get("index_rss_mb"), 0)])
    head = ["contender", "exact", "QPS", f"QPS / {REFERENCE}", "target", "recall",
            "search peak MB", "index MB"]
    return [f"At N={n:,}, batch {batch} ({where}):", ""] + _md_table(head, rows)


def full_table(recs: list[Mapping[str, Any]]) -> list[str]:
    """Every contender x N x batch: QPS, latency percentiles, recall, memory, build."""
    head = ["contender", "N", "batch", "QPS", "p50 ms", "p95 ms", "p99 ms", "calls",
            "recall", "recall (ids)", "search peak MB", "index MB", "build s", "first call s"]
    rows = []
    key = lambda r: (r["spec"]["batch"], r["spec"]["candidates"], _order(r))  # noqa: E731
    for r in sorted(recs, key=key):
        f = r["figures"]
        if r["status"] != "ok":
            rows.append([label(r), f"{r['spec']['candidates']:,}", str(r["spec"]["batch"]),
                         r["status"]] + ["-"] * (len(head) - 4))
            continue
        rows.append([label(r), f"{r['spec']['candidates']:,}", str(r["spec"]["batch"]),
                     _num(f.get("qps"), 1), _num(f.get("p50_ms"), 3), _num(f.get("p95_ms"), 3),
                     _num(f.get("p99_ms"), 3), str(f.get("calls")), _num(f.get("recall"), 4),
                     _num(f.get("recall_ids"), 4), _num(f.get("peak_rss_delta_mb"), 0),
                     _num(f.get("index_rss_mb"), 0), _num(f.get("build_s"), 3),
                     _num(f.get("first_call_s"), 3)])
    return _md_table(head, rows)


def summary_text(records: Iterable[Mapping[str, Any]]) -> str:
    """The CLI's end-of-run summary: per (dim, k), QPS at the largest batch, and ratios."""
    recs = latest(records)
    lines: list[str] = []
    for (dim, k), group in _groups(recs).items():
        batch = max(r["spec"]["batch"] for r in group)
        lines += [f"dim {dim}, k {k}: QPS at batch {batch}", ""] + pivot(group, batch)
        lines += ratios(group)
    failed = [r for r in recs if r["status"] != "ok"]
    lines += [f"{len(recs)} records, {len(failed)} not ok"]
    lines += [f"  {label(r)} N={r['spec']['candidates']} dim={r['spec']['dim']} k={r['spec']['k']}"
              f" batch={r['spec']['batch']}: {r['status']}" for r in failed[:20]]
    return "\n".join(lines)


def _groups(recs: list[Mapping[str, Any]]) -> dict[tuple[int, int], list[Mapping[str, Any]]]:
    out: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for r in recs:
        out.setdefault((r["spec"]["dim"], r["spec"]["k"]), []).append(r)
    return dict(sorted(out.items()))


def _provenance(recs: list[Mapping[str, Any]], command: str | None,
                left_out: Counter[str]) -> list[str]:
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


def render(records: Iterable[Mapping[str, Any]], command: str | None = None,
           plots: Mapping[tuple[int, int], list[str]] | None = None) -> str:
    """The section's markdown text (see the module docstring)."""
    return _render(*select(records), command, plots)


def _render(recs: list[Mapping[str, Any]], left_out: Counter[str], command: str | None,
            plots: Mapping[tuple[int, int], list[str]] | None) -> str:
    """render's text from `select`'s records and left-out count."""
    if not recs:
        return "## Top-k retrieval at scale\n\nNo retrieval records.\n"
    lines = ["## Top-k retrieval at scale", ""] + _provenance(recs, command, left_out)
    lines += ["QPS = queries per second over the timed calls (after one untimed first call);",
              "latency is one batch, ending in the framework's sync and host copy. recall is",
              "tie-aware recall@k vs the exact numpy answer (ids counted as hits when their",
              "exact score reaches the k-th best within float32 rounding); 'recall (ids)' is",
              "the plain id overlap. search peak MB: peak host RSS during the timed calls",
              "minus RSS right after the index was built (score matrices live here; GPU",
              "memory is not in it); index MB: RSS the built index added. Cells '(r=...)'",
              "flag recall < 1 (rounded down); '(nprobe ran 42)' a parameter the library",
              "clamped.", ""]
    for (dim, k), group in _groups(recs).items():
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

    recs, left_out = select(records)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(recs, out_dir / "plots", _groups(recs)) if recs else {}
    text = _render(recs, left_out, command, plots)
    with atomic_write(out_dir / SECTION_FILE) as f:  # a reader never sees half a section
        f.write(text)
    return text
