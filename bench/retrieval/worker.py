"""Worker: one contender on one (candidates, dim) group, every k, batch and param.

    python -m bench.retrieval.worker JOB.json

Runs in its own process (own KERAS_BACKEND etc.; bench/retrieval/runner.py
starts it through bench/process.py) so frameworks never share a process. It
memory-maps the group's .npy files, builds the searcher once (timed: upload /
index build), then for each (k, params, batch) makes one untimed first call
(compilation; its time is reported separately), times up to `repeats` calls
within `budget_s`, each ending in the searcher's own sync and host copy, and
reads the setting's peak memory and recall. Every finished setting goes to
the parent at once as an event, so a crash loses only the rest.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.process import EventPipe, child_main
from bench.registry import load_target
from bench.retrieval import memory
from bench.retrieval.backends.base import Searcher
from bench.retrieval.recall import recall_at_k
from bench.timing import LatencyResult, measure_calls, now_ns, seconds, timed

log = logging.getLogger(__name__)
MAX_SLICES = 64  # distinct query blocks cycled through per batch size


def load_searcher(target: str, options: dict[str, Any]) -> Searcher:
    """Import "module:Class" and construct it with the contender's options."""
    return load_target(target)(**options)  # type: ignore[operator]


def build(target: str, options: dict[str, Any], path: str, events: EventPipe,
          where: dict[str, Any]) -> tuple[Searcher, float]:
    """Construct and build the searcher; emit "built"; return it and the post-build RSS."""
    searcher, import_s = timed(lambda: load_searcher(target, options))
    memory.trim()  # the previous group's freed memory must not lower this baseline later
    baseline = memory.rss_mb()
    cand = np.array(np.load(path, mmap_mode="r"))  # load: not part of build
    memory.reset_peak()
    loaded = memory.rss_mb()
    start = now_ns()
    searcher.build(cand)
    build_s = seconds(start, now_ns())
    build_peak = memory.peak_rss_mb() - loaded
    del cand
    memory.trim()  # the candidate copy's freed heap is not the index's
    after = memory.rss_mb()
    events("built", **where, import_s=import_s, build_s=build_s, baseline_rss_mb=baseline,
           index_rss_mb=after - baseline, build_peak_delta_mb=build_peak,
           versions=searcher.versions(), device=searcher.device_name(),
           framework=searcher.framework, sync_mechanism=searcher.sync_mechanism)
    return searcher, after


def _slices(queries: np.ndarray, batch: int) -> list[tuple[int, int]]:
    """(start, stop) of the distinct query blocks a batch size cycles through."""
    count = max(1, min(MAX_SLICES, len(queries) // batch))
    return [(i * batch, (i + 1) * batch) for i in range(count)]


def run_setting(searcher: Searcher, job: dict[str, Any], k: int, batch: int,
                data: dict[str, Any]) -> dict[str, Any]:
    """Time one (k, batch) with the current params; figures for the record."""
    slices = _slices(data["queries"], batch)
    inputs = [searcher.to_device(data["queries"][a:b]) for a, b in slices]
    answers: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        j = i % len(inputs)
        answers[j] = searcher.to_numpy(searcher.search(inputs[j], k))

    start = now_ns()
    call(0)  # first call: tracing / compilation / first-touch allocation
    first_call_s = seconds(start, now_ns())
    # The peak covers the timed calls only: compilation's transient memory is not
    # search memory (what it keeps, e.g. compiled code, still shows against build RSS).
    peak_reset_ok = memory.reset_peak()
    rss0 = memory.rss_mb()
    times = measure_calls(call, warmup=job["warmup"], min_calls=job["min_calls"],
                          max_calls=job["repeats"], budget_s=job["budget_s"])
    with memory.RssSampler() as sampler:  # one more, untimed call: a cross-check of VmHWM
        call(len(times))
    peak = max(memory.peak_rss_mb(), sampler.peak_mb) if peak_reset_ok else None
    # Against the lower of the two baselines: a framework that frees a staging copy
    # of the index after build would otherwise show a negative working memory.
    base = min(data["build_rss_mb"], rss0)
    rows = np.concatenate([np.arange(*slices[j]) for j in sorted(answers)])
    found = np.concatenate([answers[j] for j in sorted(answers)])
    # The candidates are mapped here and unmapped on return, after the peak was
    # read: their pages must not stay resident into the next setting's peak.
    candidates = np.load(data["candidates_path"], mmap_mode="r")
    recall = recall_at_k(found.astype(np.int64), data["truth"][rows], data["queries"][rows],
                         candidates, k)
    del candidates
    return {**LatencyResult(batch, times).summary(), "first_call_s": first_call_s,
            "peak_rss_delta_mb": None if peak is None else peak - base,
            "peak_rss_setting_mb": None if peak is None else peak - rss0,
            "peak_reset_ok": peak_reset_ok, "rss_before_mb": rss0,
            "recall_queries": int(len(rows)), **recall,
            "resolved_options": searcher.resolved_options()}


def run_group(job: dict[str, Any], group: dict[str, Any], events: EventPipe) -> None:
    """Build once for one (candidates, dim), then every (batch, k, params)."""
    where = {"candidates": group["n"], "dim": group["dim"]}
    searcher, build_rss = build(job["target"], job["options"], group["candidates"], events, where)
    data: dict[str, Any] = {
        "build_rss_mb": build_rss,
        "candidates_path": group["candidates"],
        "queries": np.load(group["queries"]),
        "truth": np.load(group["truth_ids"]),
    }
    # Batch sizes ascending, outermost: allocators that keep freed memory (TF's)
    # then hold no more than the current setting needs when its peak is read.
    for batch in sorted(job["batches"]):
        for k in job["ks"]:
            for params in job["params"]:
                searcher.set_params(dict(params))
                at = {**where, "k": k, "batch": batch, "params": params}
                try:
                    figures = run_setting(searcher, job, k, batch, data)
                except Exception:  # noqa: BLE001 - one setting's failure is data
                    events("setting_failed", **at, error=traceback.format_exc())
                    continue
                events("setting", **at, figures=figures)


def run_job(job: dict[str, Any], events: EventPipe) -> None:
    """The job's group; a build that fails is reported as "group_failed", not raised."""
    group = job["group"]
    where = {"candidates": group["n"], "dim": group["dim"]}
    try:
        run_group(job, group, events)
    except Exception:  # noqa: BLE001 - e.g. an index that cannot be built
        events("group_failed", **where, error=traceback.format_exc())


def main(argv: list[str], events: EventPipe) -> int:
    """Run the job file named in `argv`: 0 when done (failed settings are data), 2 on misuse."""
    if len(argv) != 1:
        print("usage: python -m bench.retrieval.worker JOB.json", file=sys.stderr)
        return 2
    run_job(json.loads(Path(argv[0]).read_text()), events)
    return 0


if __name__ == "__main__":
    child_main(lambda events: main(sys.argv[1:], events))
