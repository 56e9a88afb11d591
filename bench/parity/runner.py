"""Shared-start parity's parent: one worker per (implementation, depth), compared, stored.

No framework is imported here. For each depth one set of initial weights is
drawn (bench.weights.init_weights, the plan's seed) and saved; every
implementation, the reference included, then runs bench/parity/worker.py
through the launcher (bench/process.py, the registry's env), at most
`plan.jobs` at once: it trains the first `plan.steps` batches of data.train
from those weights and writes its per-step losses and final weights.
bench/parity/compare.py judges each against the reference, and
`<results>/shared_start_parity.json` (bench/report/shared_start.py's format)
is written atomically. With device counts (`bench parity --devices 2,4`) each
implementation runs once on one device and once on each count, and each count
is compared with the one-device run instead: one `<results>/devices_parity.json`
for every count (the same pair format, bench/report/devices.py).
"""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.cache import DatasetRef
from bench.parity.compare import EQUIVALENT, LOSS_RULE, WEIGHT_RULE, compare, load_result
from bench.process import TIMED_OUT, WorkerProcess, interruptible, worker_env
from bench.registry import devices_env, entry_for
from bench.report.devices import DEVICES_FILE
from bench.report.shared_start import FILE_NAME
from bench.spec import RunSpec, layers_for_depth
from bench.store import atomic_write
from bench.weights import init_weights, save_weights

log = logging.getLogger("bench.parity")

# Differences with a known cause, by (comparison, implementation): REFERENCE compares an
# implementation with the reference, DEVICES one on N devices with itself on one. A
# `different` verdict there carries the cause as the pair's `expected` (shown in the report,
# and `bench report --check` lets it pass); any other `different` fails the check.
REFERENCE, DEVICES = "reference", "devices"
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    # tests/impls/test_parity.py proves it.
    (REFERENCE, "keras-tf"): "Keras Adagrad on TF IndexedSlices accumulates squared gradients "
    "per lookup, not per row (tests/impls/tf_adagrad_emulation.py)",
}


@dataclass(frozen=True)
class Plan:
    """What a parity run compares (the command's checked flags).

    Args:
        names: the implementations, the reference first.
        depths: tower depths; every implementation runs at each.
        steps: training steps per worker.
        batch_size, seed: of the spec and of the shared initial weights.
        dataset: the dataset as the command resolved it; every worker's job carries it.
        timeout_s: wall-clock limit of one worker.
        jobs: workers at once.
        devices: (1,): each implementation against the reference (FILE_NAME); else device
            counts above 1, each implementation on each count compared with itself on one
            (1-vs-N parity, every count in the one DEVICES_FILE) instead of with the reference.
    """

    names: tuple[str, ...]
    depths: tuple[int, ...]
    steps: int
    batch_size: int
    seed: int
    dataset: DatasetRef
    timeout_s: float
    jobs: int
    devices: tuple[int, ...] = (1,)

    @property
    def across_devices(self) -> bool:
        return self.devices != (1,)

    def device_counts(self) -> tuple[int, ...]:
        """Every count a worker runs on: the one-device run once, shared by every N."""
        return (1, *self.devices) if self.across_devices else (1,)

    def file_name(self) -> str:
        return DEVICES_FILE if self.across_devices else FILE_NAME


@dataclass
class Job:
    """One worker: an implementation at one depth, and how it ended."""

    impl: str
    layer_sizes: tuple[int, ...]
    out: Path
    error: str | None = None
    devices: int = 1


def run_parity(plan: Plan, results_dir: Path) -> tuple[dict[str, Any], list[Job]]:
    """Run every worker, compare with the reference, write the JSON.

    Returns the document written and the jobs that failed. Ctrl-C or SIGTERM
    kills every worker and removes the temporary folder before the
    KeyboardInterrupt leaves, and nothing is written: the file is one
    document, and an earlier complete one must not give way to a partial one.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    # The temporary folder inside: it is removed while a second signal is still ignored.
    with interruptible(), tempfile.TemporaryDirectory(prefix="deeprec-parity-") as tmp:
        jobs = _prepare(plan, Path(tmp))
        _run_workers(plan, jobs)
        doc = _document(plan, jobs)
    with atomic_write(results_dir / plan.file_name()) as f:
        f.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc, [j for j in jobs if j.error]


def _prepare(plan: Plan, tmp: Path) -> list[Job]:
    """Every depth's initial weights and every worker's job file, written to `tmp`."""
    jobs = []
    for depth in plan.depths:
        layers = layers_for_depth(depth)
        weights = tmp / f"initial-depth{depth}.npz"
        vocab = plan.dataset.vocab
        save_weights(weights, init_weights(vocab, layers, RunSpec.embedding_dim, plan.seed))
        for name, devices in itertools.product(plan.names, plan.device_counts()):
            job = Job(name, layers, tmp / f"{name.replace(':', '.')}-depth{depth}-x{devices}.npz",
                      devices=devices)
            spec = RunSpec(impl=name, layer_sizes=layers, batch_size=plan.batch_size,
                           seed=plan.seed, device="cpu", dataset=plan.dataset.name,
                           devices=devices)
            job.out.with_suffix(".json").write_text(json.dumps({
                "impl": name, "spec": spec.to_dict(), "steps": plan.steps,
                "dataset": plan.dataset.to_dict(),
                "weights": str(weights), "out": str(job.out)}))
            jobs.append(job)
    return jobs


def _run_workers(plan: Plan, jobs: list[Job]) -> None:
    """Every job's worker, at most plan.jobs at once; on any exception, all are killed."""
    procs = [WorkerProcess("bench.parity.worker", [str(job.out.with_suffix(".json"))],
                           worker_env(entry_for(job.impl).env,
                                      devices_env(entry_for(job.impl), "cpu", job.devices)),
                           job.out.with_suffix(".log")) for job in jobs]
    with ThreadPoolExecutor(max_workers=plan.jobs) as pool:
        try:
            futures = [pool.submit(_watch, job, proc, plan.timeout_s)
                       for job, proc in zip(jobs, procs, strict=True)]
            for future in futures:
                future.result()  # a thread's exception, or Ctrl-C while waiting
        finally:  # Ctrl-C: a worker killed before it started never starts
            for proc in procs:
                proc.kill()


def _watch(job: Job, proc: WorkerProcess, timeout_s: float) -> None:
    """Run one worker to its end; job.error says why it failed, if it did."""
    log.info("starting %s %s", job.impl, job.layer_sizes)
    started = time.monotonic()
    if proc.watch(timeout_s, lambda event: None) == TIMED_OUT:
        job.error = f"timed out after {timeout_s:g} s"
    elif proc.returncode != 0 or not job.out.exists():
        job.error = f"worker exit {proc.returncode}"
    if job.error:
        log.error("%s %s failed (%s):\n%s", job.impl, job.layer_sizes, job.error,
                  proc.log_tail(3000))
    else:
        log.info("%s %s done in %.1f s", job.impl, job.layer_sizes, time.monotonic() - started)


def _document(plan: Plan, jobs: list[Job]) -> dict[str, Any]:
    """The JSON bench/report/shared_start.py reads (plus extra keys it ignores)."""
    if plan.across_devices:
        return _devices_document(plan, jobs)
    reference, pairs = plan.names[0], []
    for depth in plan.depths:
        layers = layers_for_depth(depth)
        at_depth = {j.impl: j for j in jobs if j.layer_sizes == layers}
        ref = at_depth[reference]
        if ref.error:
            continue  # nothing to compare with at this depth
        for name in plan.names[1:]:
            job = at_depth[name]
            if not job.error:
                pairs.append(_judged(plan, REFERENCE, name, layers, (name, reference),
                                     job, ref))
    return {**_header(plan), "pairs": pairs,
            "failed": [f"{j.impl} {list(j.layer_sizes)}: {j.error}" for j in jobs if j.error]}


def _devices_document(plan: Plan, jobs: list[Job]) -> dict[str, Any]:
    """1-vs-N parity: each implementation on each of plan.devices against itself on one."""
    pairs = []
    by_key = {(j.impl, j.layer_sizes, j.devices): j for j in jobs}
    for depth, n, name in itertools.product(plan.depths, plan.devices, plan.names):
        layers = layers_for_depth(depth)
        one, many = by_key[(name, layers, 1)], by_key[(name, layers, n)]
        if not (one.error or many.error):
            pair = _judged(plan, DEVICES, name, layers, (f"{name} x{n}", f"{name} x1"),
                           many, one)
            pairs.append({**pair, "implementation": name, "devices": n})
    return {**_header(plan), "devices": list(plan.devices), "pairs": pairs,
            "failed": [f"{j.impl} x{j.devices} {list(j.layer_sizes)}: {j.error}"
                       for j in jobs if j.error]}


def _judged(plan: Plan, comparison: str, name: str, layers: tuple[int, ...],
            labels: tuple[str, str], job: Job, baseline: Job) -> dict[str, Any]:
    """One pair: `job`'s result against `baseline`'s, with its known cause where it has one.

    `expected` is the cause (KNOWN_DIFFERENCES) of a `different` verdict, else None: a
    known difference that did not show needs no excuse.
    """
    cause = KNOWN_DIFFERENCES.get((comparison, name), "")
    pair = compare(*labels, load_result(job.out), load_result(baseline.out),
                   note=f"expected: {cause}" if cause else "")
    if pair["verdict"] == EQUIVALENT:
        pair["note"], cause = "", ""
    if len(plan.depths) > 1:
        pair["note"] = f"layers {list(layers)}; {pair['note']}".rstrip("; ")
    return {**pair, "expected": cause or None, "layer_sizes": list(layers)}


def _header(plan: Plan) -> dict[str, Any]:
    single = len(plan.depths) == 1
    return {
        "steps": plan.steps, "seed": plan.seed,
        "layer_sizes": list(layers_for_depth(plan.depths[0])) if single
        else [list(layers_for_depth(d)) for d in plan.depths],
        "batch_size": plan.batch_size, "dataset": plan.dataset.name,
        "loss_rule": LOSS_RULE, "weight_rule": WEIGHT_RULE,
    }
