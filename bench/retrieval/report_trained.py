"""The retrieval report's section on trained embeddings (`bench retrieval --embeddings`).

One subsection per trained workload (one set of arrays: a training run's
candidate and query embeddings), each with the random workload's tables on
its own records only (QPS, ratios to faiss-flat, every setting) and a
recall-vs-QPS plot, plus a table that sets every contender's recall and QPS
beside the random workload's at the same dim, k and batch and the nearest
candidate count: approximate indexes behave differently on learned vectors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bench.retrieval.report_tables import (
    full_table,
    groups,
    label,
    md_table,
    num,
    order,
    pivot,
    provenance,
    ratios,
    readable,
    select,
    workload_key,
)

HEADING = "## Top-k retrieval on trained embeddings"
Plots = Mapping[tuple[int, int], list[str]]  # (dim, k) -> plot file names


def workloads(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The trained workloads' keys among readable records, by dataset, N and key."""
    found: dict[str, tuple[str, int]] = {}
    for rec in readable(records)[0]:
        key = workload_key(rec)
        if key:
            found[key] = (str(rec["spec"]["workload"].get("dataset")), rec["spec"]["candidates"])
    return sorted(found, key=lambda key: (*found[key], key))


def slug(recs: list[Mapping[str, Any]]) -> str:
    """A file-name-safe tag of one workload: dataset and the arrays hash's first 8 digits."""
    w = recs[0]["spec"]["workload"]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', str(w.get('dataset')))}-{workload_key(recs[0])[:8]}"


def _nearest_random(random: list[Mapping[str, Any]], dim: int, k: int,
                    n: int) -> list[Mapping[str, Any]]:
    """The random records at this dim and k and the candidate count nearest `n` (log scale)."""
    here = [r for r in random if r["spec"]["dim"] == dim and r["spec"]["k"] == k]
    if not here:
        return []
    near = min({r["spec"]["candidates"] for r in here}, key=lambda c: (abs(math.log(c / n)), c))
    return [r for r in here if r["spec"]["candidates"] == near]


def beside_random(group: list[Mapping[str, Any]], random: list[Mapping[str, Any]]) -> list[str]:
    """Recall and QPS of each contender on trained vectors beside the random workload's."""
    n, dim, k = (group[0]["spec"][key] for key in ("candidates", "dim", "k"))
    batch = max(r["spec"]["batch"] for r in group)
    near = _nearest_random(random, dim, k, n)
    if not near:
        return [f"No random-workload records at dim {dim}, k {k} to set beside these.", ""]
    rn = near[0]["spec"]["candidates"]
    by_label = {label(r): r for r in near if r["spec"]["batch"] == batch}
    rows = []
    for r in sorted((r for r in group if r["spec"]["batch"] == batch), key=order):
        other = by_label.get(label(r))
        cells = [(x["figures"].get("recall"), x["figures"].get("qps"))
                 if x is not None and x["status"] == "ok" else (None, None) for x in (other, r)]
        rows.append([label(r), num(cells[0][0], 4), num(cells[1][0], 4), num(cells[0][1], 1),
                     num(cells[1][1], 1)])
    head = ["contender", f"recall, random N={rn:,}", f"recall, trained N={n:,}",
            "QPS, random", "QPS, trained"]
    runs = {r.get("invocation") for r in group + near}
    where = "same run" if len(runs) == 1 and None not in runs else \
        "QPS from separate runs: compare loosely"
    return [f"Beside the random workload at batch {batch} ({where}):", ""] + md_table(head, rows)


def _about(recs: list[Mapping[str, Any]]) -> list[str]:
    w, spec = recs[0]["spec"]["workload"], recs[0]["spec"]
    return [f"Embeddings of `{w.get('impl')}` training run `{w.get('run_id')}` (spec "
            f"{w.get('spec_hash')}) on {w.get('dataset')} (cache {w.get('content_hash')}): "
            f"{spec['candidates']:,} candidates, dim {spec['dim']}; queries: the query tower on "
            f"the first {spec['num_queries']:,} test rows; arrays {workload_key(recs[0])}.", ""]


def workload_text(recs: list[Mapping[str, Any]], left_out: Any,
                  random: list[Mapping[str, Any]], plots: Plots | None) -> list[str]:
    """One workload's subsection."""
    w, spec = recs[0]["spec"]["workload"], recs[0]["spec"]
    lines = [f"### {w.get('dataset')}: {spec['candidates']:,} candidates, dim {spec['dim']} "
             f"(run {w.get('run_id')})", ""] + _about(recs) + provenance(recs, None, left_out)
    for (dim, k), group in groups(recs).items():
        batch = max(r["spec"]["batch"] for r in group)
        lines += [f"#### k {k}", "", f"QPS at batch {batch}:", ""]
        lines += pivot(group, batch) + ratios(group) + beside_random(group, random)
        lines += [f"![{p}](plots/{p})" for p in (plots or {}).get((dim, k), [])] + [""]
        lines += ["<details><summary>All settings</summary>", ""] + full_table(group)
        lines += ["</details>", ""]
    return lines


def text(records: Iterable[Mapping[str, Any]], random: list[Mapping[str, Any]],
         plots: Mapping[str, Plots] | None = None) -> str:
    """The whole trained section ("" when there is no trained record).

    Args:
        records: stored records of any kind.
        random: the random workload's selected records (set beside the trained ones).
        plots: per workload key, its plot file names per (dim, k).
    """
    records = list(records)
    keys = workloads(records)
    if not keys:
        return ""
    lines = [HEADING, "", "The same contenders and measurements as on random vectors, on "
             "embeddings a trained model wrote",
             "(`python -m bench run --save-embeddings`, then `python -m bench retrieval "
             "--embeddings`),", "each set of embeddings in its own tables.", ""]
    for key in keys:
        recs, left_out = select(records, key)
        lines += workload_text(recs, left_out, random, (plots or {}).get(key))
    return "\n" + "\n".join(lines)  # a blank line after the random section
