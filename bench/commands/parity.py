"""`python -m bench parity`: shared-start, step-level parity, stored for the report.

    python -m bench parity [--impl all|a,b] [--depth 1,3] [--steps 20] [--dataset ml-100k]
                           [--results DIR] [--cache-dir DIR] [--reference jax]

The parent (no framework imported here) loads the dataset, draws one set of
initial weights (bench.weights.init_weights, --seed) and saves it. Each
implementation, the reference included, then runs in its own worker process
(bench/parity/worker.py, the registry's env): it loads that file, trains the
first --steps batches of data.train in row order and writes its per-step
losses and final weights. bench.parity compares each with the reference and
`<results>/shared_start_parity.json` (bench/report/shared_start.py's format)
is written atomically. Exit 0 when every run finished (whatever the
verdicts), 1 when a worker failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import paths, process
from bench.parity import compare as parity
from bench.errors import UsageError
from bench.report.shared_start import FILE_NAME
from bench.spec import RunSpec, layers_for_depth
from bench.run.sweep import parse_int_list, resolve_impls
from bench.weights import init_weights, save_weights

log = logging.getLogger("bench.parity")

# Why keras-tf is expected to part from the others (tests/impls/test_parity.py proves it).
KNOWN_DIFFERENCES = {
    "keras-tf": "expected: Keras Adagrad on TF IndexedSlices accumulates squared gradients "
    "per lookup, not per row (tests/impls/tf_adagrad_emulation.py)",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "parity", help="shared-start step-level parity of the implementations",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--impl", default="all", help="all (the five primary) or a comma list")
    p.add_argument("--reference", default="jax", help="the baseline every impl is compared with")
    p.add_argument("--depth", default="1", help="tower depth(s), e.g. 1 or 1,3")
    p.add_argument("--steps", type=int, default=20, help="training steps K (default 20)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="seed of the shared initial weights")
    p.add_argument("--dataset", default="ml-100k", help="cache name or module:function")
    p.add_argument("--results", default=str(paths.LOCAL_RUNS),
                   help="where the JSON goes: the records dir `bench report --results` reads "
                        f"(default: {paths.LOCAL_RUNS}; the committed study's: {paths.STUDY_RUNS})")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per worker")
    p.add_argument("--jobs", type=int, default=2, help="workers at once")
    p.set_defaults(func=run)
    return p


@dataclass
class Job:
    """One worker: an implementation at one depth."""

    impl: str
    layer_sizes: tuple[int, ...]
    out: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    error: str | None = None


def _check_args(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size),
                        ("--jobs", args.jobs), ("--timeout", args.timeout)):
        if value <= 0:
            raise UsageError(f"{flag} must be > 0, got {value}")
    depths = parse_int_list(args.depth, "--depth")
    names = [e.name for e in resolve_impls(args.impl)]
    reference = resolve_impls(args.reference)
    if len(reference) != 1:
        raise UsageError(f"--reference: one implementation, got {args.reference!r}")
    ref = reference[0].name
    return [ref] + [n for n in names if n != ref], depths


def run(args: argparse.Namespace) -> int:
    """Run every worker, compare with the reference, write the JSON; see the module doc."""
    names, depths = _check_args(args)
    results_dir = Path(args.results)
    from bench.run.worker import load_dataset  # numpy only; after the cheap argument checks

    try:
        data = load_dataset(args.dataset, args.cache_dir)
    except Exception as exc:  # a missing cache, a bad module:function
        raise UsageError(f"--dataset {args.dataset}: {exc}") from None
    if args.steps > -(-len(data.train) // args.batch_size):
        raise UsageError(f"--steps {args.steps}: data.train has only {len(data.train)} rows")
    results_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deeprec-parity-") as tmp:
        jobs = _run_workers(args, data, names, depths, Path(tmp))
        doc = _document(args, names, depths, jobs)
    _write_atomically(results_dir / FILE_NAME, doc)
    for p in doc["pairs"]:
        print(f"{p['impl']:>14} vs {p['baseline']} {p['layer_sizes']}: {p['verdict']}"
              f"  max|dloss| {_fmt(p['max_abs_loss_diff'])}"
              f"  max|dw| {_fmt(p['max_abs_weight_diff'])}")
    failed = [j for j in jobs if j.error]
    for j in failed:
        print(f"{j.impl} {j.layer_sizes}: FAILED: {j.error}", file=sys.stderr)
    print(f"wrote {results_dir / FILE_NAME} ({len(doc['pairs'])} pairs)")
    return 1 if failed else 0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2e}"


def _run_workers(args: argparse.Namespace, data: Any, names: list[str], depths: list[int],
                 tmp: Path) -> list[Job]:
    """Start every (impl, depth) worker, at most --jobs at once; wait for all."""
    jobs = []
    for depth in depths:
        layers = layers_for_depth(depth)
        weights = tmp / f"initial-depth{depth}.npz"
        save_weights(weights, init_weights(data.vocab, layers, RunSpec.embedding_dim, args.seed))
        for name in names:
            slug = f"{name.replace(':', '.')}-depth{depth}"
            job = Job(name, layers, tmp / f"{slug}.npz", tmp / f"{slug}.log")
            spec = RunSpec(impl=name, layer_sizes=layers, batch_size=args.batch_size,
                           seed=args.seed, device="cpu", dataset=args.dataset)
            (tmp / f"{slug}.json").write_text(json.dumps({
                "impl": name, "spec": spec.to_dict(), "steps": args.steps,
                "dataset": {"name": args.dataset, "cache_dir": args.cache_dir},
                "weights": str(weights), "out": str(job.out)}))
            jobs.append(job)
    pending, running = list(jobs), list[Job]()
    try:
        while pending or running:
            while pending and len(running) < args.jobs:
                running.append(_start(pending.pop(0), tmp))
            time.sleep(0.2)
            running = [j for j in running if not _finished(j, args.timeout)]
    finally:  # Ctrl-C or a crash here: no orphaned worker (each leads its own group)
        for j in running:
            if j.proc is not None and j.proc.poll() is None:
                process._signal_group(j.proc.pid, process.signal.SIGKILL)
                j.proc.wait()
    return jobs


def _start(job: Job, tmp: Path) -> Job:
    """Popen the worker in its own session (a timeout kills its whole process group)."""
    from bench.registry import REGISTRY

    env = dict(os.environ)
    env.update(REGISTRY[job.impl].env if job.impl in REGISTRY else {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    job_file = tmp / f"{job.out.stem}.json"
    log.info("starting %s %s", job.impl, job.layer_sizes)
    with open(job.log_path, "wb") as log_file:
        job.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.parity.worker", str(job_file)], env=env,
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True)
    job.started = time.monotonic()
    return job


def _finished(job: Job, timeout_s: float) -> bool:
    """True once the worker exited or was killed for its timeout; sets job.error if failed."""
    assert job.proc is not None
    code = job.proc.poll()
    if code is None and time.monotonic() - job.started < timeout_s:
        return False
    if code is None:
        process._signal_group(job.proc.pid, process.signal.SIGKILL)
        job.proc.wait()
        job.error = f"timed out after {timeout_s:g} s"
    else:
        process._signal_group(job.proc.pid, process.signal.SIGKILL)  # leftover children
        if code != 0 or not job.out.exists():
            job.error = f"worker exit {code}"
    if job.error:
        tail = job.log_path.read_bytes()[-3000:].decode(errors="replace").strip()
        log.error("%s %s failed (%s):\n%s", job.impl, job.layer_sizes, job.error, tail)
    else:
        log.info("%s %s done in %.1f s", job.impl, job.layer_sizes,
                 time.monotonic() - job.started)
    return True


def _document(args: argparse.Namespace, names: list[str], depths: list[int],
              jobs: list[Job]) -> dict[str, Any]:
    """The JSON bench/report/shared_start.py reads (plus extra keys it ignores)."""
    reference, pairs = names[0], []
    for depth in depths:
        layers = layers_for_depth(depth)
        at_depth = {j.impl: j for j in jobs if j.layer_sizes == layers}
        ref = at_depth[reference]
        if ref.error:
            continue  # nothing to compare with at this depth
        ref_run = parity.load_result(ref.out)
        for name in names[1:]:
            job = at_depth[name]
            if job.error:
                continue
            pair = parity.compare(name, reference, parity.load_result(job.out), ref_run,
                                  note=KNOWN_DIFFERENCES.get(name, ""))
            if pair["verdict"] == parity.EQUIVALENT:
                pair["note"] = ""  # a known difference that did not show needs no excuse
            if len(depths) > 1:
                pair["note"] = f"layers {list(layers)}; {pair['note']}".rstrip("; ")
            pairs.append({**pair, "layer_sizes": list(layers)})
    single = len(depths) == 1
    return {
        "steps": args.steps, "seed": args.seed,
        "layer_sizes": list(layers_for_depth(depths[0])) if single
        else [list(layers_for_depth(d)) for d in depths],
        "batch_size": args.batch_size, "dataset": args.dataset,
        "loss_rule": parity.LOSS_RULE, "weight_rule": parity.WEIGHT_RULE,
        "failed": [f"{j.impl} {list(j.layer_sizes)}: {j.error}" for j in jobs if j.error],
        "pairs": pairs,
    }


def _write_atomically(path: Path, doc: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
