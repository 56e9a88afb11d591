"""Shared-start parity's parent: one worker per (implementation, depth), compared, stored.

No framework is imported here. For each depth one set of initial weights is
drawn (bench.weights.init_weights, the plan's seed) and saved; every
implementation, the reference included, then runs bench/parity/worker.py
through the launcher (bench/process.py, the registry's env), at most
`plan.jobs` at once: it trains the first `plan.steps` batches of data.train
from those weights and writes its per-step losses and final weights.
bench/parity/compare.py judges each against the reference, and
`<results>/shared_start_parity.json` (bench/report/shared_start.py's format)
is written atomically.
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
from bench.report.shared_start import FILE_NAME
from bench.spec import RunSpec, layers_for_depth
from bench.store import atomic_write
from bench.weights import init_weights, save_weights

log = logging.getLogger("bench.parity")

# Where `bench parity --devices N` writes its 1-vs-N comparison (same pair format).
DEVICES_FILE = "devices_parity.json"

# Why keras-tf is expected to part from the others (tests/impls/test_parity.py proves it).
KNOWN_DIFFERENCES = {
    "keras-tf": "expected: Keras Adagrad on TF IndexedSlices accumulates squared gradients "
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
        devices: above 1, each implementation on `devices` devices is compared with itself
            on one (1-vs-N parity, written to DEVICES_FILE) instead of with the reference.
    """

    names: tuple[str, ...]
    depths: tuple[int, ...]
    steps: int
    batch_size: int
    seed: int
    dataset: DatasetRef
    timeout_s: float
    jobs: int
    devices: int = 1

    def device_counts(self) -> tuple[int, ...]:
        return (1,) if self.devices == 1 else (1, self.devices)


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
    with atomic_write(results_dir / (FILE_NAME if plan.devices == 1 else DEVICES_FILE)) as f:
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
    if plan.devices > 1:
        return _devices_document(plan, jobs)
    reference, pairs = plan.names[0], []
    for depth in plan.depths:
        layers = layers_for_depth(depth)
        at_depth = {j.impl: j for j in jobs if j.layer_sizes == layers}
        ref = at_depth[reference]
        if ref.error:
            continue  # nothing to compare with at this depth
        ref_run = load_result(ref.out)
        for name in plan.names[1:]:
            job = at_depth[name]
            if job.error:
                continue
            pair = compare(name, reference, load_result(job.out), ref_run,
                           note=KNOWN_DIFFERENCES.get(name, ""))
            if pair["verdict"] == EQUIVALENT:
                pair["note"] = ""  # a known difference that did not show needs no excuse
            if len(plan.depths) > 1:
                pair["note"] = f"layers {list(layers)}; {pair['note']}".rstrip("; ")
            pairs.append({**pair, "layer_sizes": list(layers)})
    return {**_header(plan), "pairs": pairs,
            "failed": [f"{j.impl} {list(j.layer_sizes)}: {j.error}" for j in jobs if j.error]}


def _devices_document(plan: Plan, jobs: list[Job]) -> dict[str, Any]:
    """1-vs-N parity: each implementation on plan.devices devices against itself on one."""
    pairs = []
    for depth in plan.depths:
        layers = layers_for_depth(depth)
        for name in plan.names:
            one, many = (next(j for j in jobs if (j.impl, j.layer_sizes, j.devices) ==
                              (name, layers, n)) for n in (1, plan.devices))
            if one.error or many.error:
                continue
            pair = compare(f"{name} x{plan.devices}", f"{name} x1", load_result(many.out),
                           load_result(one.out))
            if len(plan.depths) > 1:
                pair["note"] = f"layers {list(layers)}; {pair['note']}".rstrip("; ")
            pairs.append({**pair, "layer_sizes": list(layers), "devices": plan.devices})
    return {**_header(plan), "devices": plan.devices, "pairs": pairs,
            "failed": [f"{j.impl} x{j.devices} {list(j.layer_sizes)}: {j.error}"
                       for j in jobs if j.error]}


def _header(plan: Plan) -> dict[str, Any]:
    single = len(plan.depths) == 1
    return {
        "steps": plan.steps, "seed": plan.seed,
        "layer_sizes": list(layers_for_depth(plan.depths[0])) if single
        else [list(layers_for_depth(d)) for d in plan.depths],
        "batch_size": plan.batch_size, "dataset": plan.dataset.name,
        "loss_rule": LOSS_RULE, "weight_rule": WEIGHT_RULE,
    }
