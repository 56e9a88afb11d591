"""The worker: one run in its own process (`python -m bench.run.worker JOB.json`).

The parent (bench/run/runner.py) writes a job file and starts this module with the
implementation's environment (KERAS_BACKEND, device variables). Here, and only
here, frameworks get imported. The worker loads the dataset, builds the
initial weights from the spec's seed, builds the implementation, times every
phase (bench/run/phases.py), appends its record to the store the launch gave it (a
private folder, bench/run/launch.py: the runner alone writes records.jsonl) and exits 0
(ok) or 1 (failed, with the traceback in the record). Progress goes to the
parent as JSON-line events on the launcher's pipe (bench/process.py), never on
stdout, which frameworks write to freely.

Job file keys: record (the RunRecord skeleton: run_id, impl, spec, ...),
target ("module:Class"), dataset (bench.data.cache.DatasetRef), results_dir,
spawn_ns (the parent's perf_counter_ns at spawn), retrieve_budget_s, save_embeddings
(a folder, or null: bench/run/export.py).

Memory figures besides peak_rss_mb (MiB): peak_rss_train_mb (the peak after training and
its validation, before the numpy check), rss_start_mb (this process at start),
rss_after_load_mb (the dataset loaded), rss_after_import_mb (the framework imported,
no tensor built yet: what the framework itself costs is the difference), and what the
run needs (bench.spec.MemoryNeed): need_params_mb, need_optimizer_mb (Adagrad: one
accumulator per parameter), need_data_mb (the dataset arrays) and need_mb (their sum).
num_users and num_movies are the dataset's vocabulary sizes (the tables have one row more).
prepare_s times the implementation's own data preparation (RetrievalImpl.prepare: ~0 for
those fed by the cache); impl_info.shared_start says whether it started from the
harness's initial weights.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.contract import RetrievalImpl
from bench.data.cache import ENV_VAR, DatasetRef, load_ref
from bench.data.dataset import Dataset, Split
from bench.process import EventPipe, child_main
from bench.record import STATUS_FAILED, STATUS_OK, RunRecord, error_tail
from bench.registry import entry_for, is_target
from bench.run import export, phases
from bench.spec import MB, RunSpec, memory_need
from bench.store import ResultsStore
from bench.timing import now_ns, seconds, timed
from bench.weights import init_weights

log = logging.getLogger("bench.run.worker")


def run_job(job: dict[str, Any], rec: RunRecord, progress: EventPipe) -> None:
    """Every phase of one run; fills `rec` as it goes (partial on failure)."""
    spec = RunSpec.from_dict(job["record"]["spec"])
    figures = rec.figures
    figures["rss_start_mb"] = _rss_mb()
    progress("phase", phase="cache_load")
    # The parent verified every byte; this checks the cache still holds that content.
    ref = DatasetRef.from_dict(job["dataset"])
    _pin_cache_root(ref)
    data, figures["cache_load_s"] = timed(lambda: load_ref(ref))
    rec.dataset["content_hash"] = data.content_hash
    figures["train_rows"], figures["test_rows"] = len(data.train), len(data.test)
    figures["num_users"], figures["num_movies"] = data.vocab.num_users, data.vocab.num_movies
    figures["rss_after_load_mb"] = _rss_mb()
    progress("phase", phase="import")
    cls, figures["import_s"] = timed(entry_for(rec.impl).load)  # the framework's import
    figures["rss_after_import_mb"] = _rss_mb()  # before any weight or tensor exists
    # The run's split (spec.split): re-split here, so every cache-fed implementation of a
    # seed trains on the same rows; one with its own pipeline (shared_start False) splits
    # itself. Asked of the class, so a module:Class target is served as it declares.
    if cls.shared_start:
        data, resplit_s = timed(lambda: data.resplit(spec.split_seed()))
        figures["cache_load_s"] += resplit_s
    full, data = data, _capped(data, spec.eval_rows)
    if spec.batch_size > len(data.train):
        raise ValueError(f"batch size {spec.batch_size} > {len(data.train)} training rows")
    weights, figures["weights_init_s"] = timed(
        lambda: init_weights(data.vocab, spec.layer_sizes, spec.embedding_dim, spec.seed)
    )
    progress("phase", phase="prepare")
    prepared, figures["prepare_s"] = timed(lambda: cls.prepare(spec, data))
    progress("phase", phase="build")
    impl, figures["build_s"] = timed(lambda: _build(cls, spec, prepared, weights))
    rec.impl_info.update(_impl_info(impl))
    progress("phase", phase="train")
    phases.train(impl, data, rec, progress)
    # Before the numpy check's (block x candidates) score matrices: training's own peak.
    figures["peak_rss_train_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    progress("phase", phase="evaluate")
    queries, candidates, numpy_top = phases.numpy_accuracy(impl, spec, rec)
    progress("phase", phase="retrieve")
    phases.retrieval(impl, queries, numpy_top, spec, rec, float(job["retrieve_budget_s"]))
    phases.memory(impl, rec)
    # After the peak is read: sizing a lazily gathered column may gather it (bench/data).
    figures.update(memory_need(spec.layer_sizes, spec.embedding_dim, spec.batch_size,
                               full.vocab, _data_bytes(full)).figures())
    if job.get("save_embeddings"):
        export.save_embeddings(Path(job["save_embeddings"]), rec, candidates, queries)


def _pin_cache_root(ref: DatasetRef) -> None:
    """Make this process's cache root the one the parent resolved (its --cache-dir too).

    An implementation that reads more than the cache's arrays (keras-reference's raw
    records, bench.data.tfds_records) then finds them under the run's cache root.
    """
    if not is_target(ref.name):
        os.environ[ENV_VAR] = str(Path(ref.location).parent)


def _rss_mb() -> float:
    """This process's resident memory now (MiB): the baseline a framework's import adds to."""
    return float(psutil.Process().memory_info().rss) / MB


def _data_bytes(data: Dataset) -> int:
    """Bytes of the dataset arrays the run holds (both splits and the candidate table)."""
    arrays = [*data.candidates.values()]
    for split in (data.train, data.test):
        arrays += [*split.features.values(), split.label]
    return sum(int(a.nbytes) for a in arrays)


def _capped(data: Dataset, eval_rows: int | None) -> Dataset:
    """`data` with its test split cut to its first `eval_rows` rows (None: as it is).

    The cache holds the test split already shuffled, so its first rows are a sample.
    Columns are cut when read, so none is read (or gathered) before the run reads it.
    """
    if eval_rows is None or eval_rows >= len(data.test):
        return data
    test = data.test
    return dataclasses.replace(data, test=Split(_Head(test.features, eval_rows),
                                                test.label[:eval_rows]))


class _Head(Mapping[str, np.ndarray]):
    """The first `n` rows of every column of `columns`, cut as each is read."""

    def __init__(self, columns: Mapping[str, np.ndarray], n: int) -> None:
        self._columns, self._n = columns, n

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name][: self._n]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def _build(cls: type[RetrievalImpl], spec: RunSpec, data: Any, weights: Any) -> RetrievalImpl:
    impl = cls(spec, data, weights)
    impl.synchronize()  # host->device copies belong to the build phase
    return impl


def _impl_info(impl: RetrievalImpl) -> dict[str, Any]:
    return {
        "framework": impl.framework,
        "sync_mechanism": impl.sync_mechanism,
        "shared_start": impl.shared_start,
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
