"""Worker: one contender on every (candidates, dim) group of a job, every k, batch and param.

    python -m bench.retrieval.worker JOB.json EVENTS.jsonl

Runs in its own process (own KERAS_BACKEND etc.) so frameworks never share a
process. For each (candidates, dim) group it memory-maps that group's .npy
files, builds the searcher once (timed: upload / index build), then for each
(k, params, batch) makes one untimed first call (compilation; its time is
reported separately), times up to `repeats` calls within `budget_s`, each
ending in the searcher's own sync and host copy, and reads the setting's
peak memory and recall. Every finished setting is appended to EVENTS.jsonl
at once, so a crash loses only the rest.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.registry import load_target
from bench.retrieval import memory
from bench.retrieval.backends.base import Searcher
from bench.retrieval.recall import recall_at_k
from bench.timing import LatencyResult, measure_calls, now_ns, seconds, timed

log = logging.getLogger(__name__)
MAX_SLICES = 64  # distinct query blocks cycled through per batch size


class Events:
    """Append-and-flush JSON lines the parent reads while the worker runs."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in main

    def emit(self, event: str, **fields: Any) -> None:
        self.file.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self.file.flush()


def load_searcher(target: str, options: dict[str, Any]) -> Searcher:
    """Import "module:Class" and construct it with the contender's options."""
    return load_target(target)(**options)  # type: ignore[operator]


def build(target: str, options: dict[str, Any], path: str, events: Events,
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
    events.emit("built", **where, import_s=import_s, build_s=build_s, baseline_rss_mb=baseline,
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


def run_group(job: dict[str, Any], group: dict[str, Any], events: Events) -> None:
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
                    events.emit("setting_failed", **at, error=traceback.format_exc())
                    continue
                events.emit("setting", **at, figures=figures)


def run_job(job: dict[str, Any], events: Events) -> None:
    """Every group in order; a group whose build fails is reported and skipped."""
    for group in job["groups"]:
        where = {"candidates": group["n"], "dim": group["dim"]}
        events.emit("group_start", **where)
        try:
            run_group(job, group, events)
        except Exception:  # noqa: BLE001 - e.g. an index that cannot be built
            events.emit("group_failed", **where, error=traceback.format_exc())
        gc.collect()  # free this group's index before the next one's baseline
    events.emit("done")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.retrieval.worker JOB.json EVENTS.jsonl", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    job = json.loads(Path(args[0]).read_text())
    events = Events(Path(args[1]))
    try:
        run_job(job, events)
    except Exception:  # noqa: BLE001 - reported to the parent, then a non-zero exit
        events.emit("failed", error=traceback.format_exc())
        return 1
    finally:
        events.file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
