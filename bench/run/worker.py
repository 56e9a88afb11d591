"""The worker: one run in its own process (`python -m bench.run.worker JOB.json`).

The parent (bench/run/runner.py) writes a job file and starts this module with the
implementation's environment (KERAS_BACKEND, device variables). Here, and only
here, frameworks get imported. The worker loads the dataset, builds the
initial weights from the spec's seed, builds the implementation, times every
phase (bench/run/phases.py), appends its record to the results store and exits 0
(ok) or 1 (failed, with the traceback in the record). Progress goes to the
parent as JSON-line events on the launcher's pipe (bench/process.py), never on
stdout, which frameworks write to freely.

Job file keys: record (the RunRecord skeleton: run_id, impl, spec, ...),
target ("module:Class"), dataset (bench.data.cache.DatasetRef), results_dir,
spawn_ns (the parent's perf_counter_ns at spawn), retrieve_budget_s.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from bench.contract import RetrievalImpl
from bench.data.cache import DatasetRef, load_ref
from bench.data.dataset import Dataset
from bench.process import EventPipe, child_main
from bench.record import STATUS_FAILED, STATUS_OK, RunRecord, error_tail
from bench.registry import entry_for
from bench.run import phases
from bench.spec import RunSpec
from bench.store import ResultsStore
from bench.timing import now_ns, seconds, timed
from bench.weights import init_weights

log = logging.getLogger("bench.run.worker")


def run_job(job: dict[str, Any], rec: RunRecord, progress: EventPipe) -> None:
    """Every phase of one run; fills `rec` as it goes (partial on failure)."""
    spec = RunSpec.from_dict(job["record"]["spec"])
    figures = rec.figures
    progress("phase", phase="cache_load")
    # The parent verified every byte; this checks the cache still holds that content.
    data, figures["cache_load_s"] = timed(lambda: load_ref(DatasetRef.from_dict(job["dataset"])))
    rec.dataset["content_hash"] = data.content_hash
    figures["train_rows"], figures["test_rows"] = len(data.train), len(data.test)
    if spec.batch_size > len(data.train):
        raise ValueError(f"batch size {spec.batch_size} > {len(data.train)} training rows")
    progress("phase", phase="import")
    cls, figures["import_s"] = timed(entry_for(rec.impl).load)  # the framework's import
    weights, figures["weights_init_s"] = timed(
        lambda: init_weights(data.vocab, spec.layer_sizes, spec.embedding_dim, spec.seed)
    )
    progress("phase", phase="build")
    impl, figures["build_s"] = timed(lambda: _build(cls, spec, data, weights))
    rec.impl_info.update(_impl_info(impl))
    progress("phase", phase="train")
    phases.train(impl, data, rec, progress)
    progress("phase", phase="evaluate")
    queries, numpy_top = phases.numpy_accuracy(impl, data, spec, rec)
    progress("phase", phase="retrieve")
    phases.retrieval(impl, queries, numpy_top, spec, rec, float(job["retrieve_budget_s"]))
    phases.memory(impl, rec)


def _build(cls: type[RetrievalImpl], spec: RunSpec, data: Dataset, weights: Any) -> RetrievalImpl:
    impl = cls(spec, data, weights)
    impl.synchronize()  # host->device copies belong to the build phase
    return impl


def _impl_info(impl: RetrievalImpl) -> dict[str, Any]:
    return {
        "framework": impl.framework,
        "sync_mechanism": impl.sync_mechanism,
        "device_name": impl.device_name(),
        "versions": impl.versions(),
        "resolved_options": impl.resolved_options(),
    }


def main(argv: list[str], progress: EventPipe) -> int:
    """Run the job file named in `argv`; 0 when ok, 1 when failed (the record says why)."""
    job = json.loads(Path(argv[0]).read_text())
    rec = RunRecord.from_dict(job["record"])
    rec.impl_info["target"] = job["target"]
    rec.worker = {"pid": os.getpid(), "exit_code": None, "signal": None}
    try:
        run_job(job, rec, progress)
        rec.status = STATUS_OK
    except Exception:
        rec.status = STATUS_FAILED
        rec.error = error_tail(traceback.format_exc())
        log.error("run failed:\n%s", rec.error)
    rec.worker["exit_code"] = 0 if rec.status == STATUS_OK else 1
    # perf_counter_ns is CLOCK_MONOTONIC on Linux, one clock for every process, so the
    # parent's spawn time and this worker's "now" can be subtracted.
    rec.duration_s = seconds(int(job["spawn_ns"]), now_ns())
    ResultsStore(job["results_dir"]).append(rec)
    return int(rec.worker["exit_code"])


if __name__ == "__main__":
    child_main(lambda events: main(sys.argv[1:], events))
