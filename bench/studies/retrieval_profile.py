"""Where a contender's search time goes: matmul, top-k, transfer, measured apart.

    python -m bench.studies.retrieval_profile --impl jax,torch,keras-tf --candidates 1000000 \\
        --dim 32 --k 100 --batch 1000 --out results/retrieval/profile.md

For one setting it writes the same synthetic data the study uses, then runs
each contender in its own process (`--worker`, started by bench/process.py),
which times the whole search and each of the searcher's `phases()` (first
call untimed, then the median of `--calls`) and sends them back as one
"timings" event; the parent writes a markdown table: total, each phase, and
what is left (total minus the phases: dispatch, allocation, what a fused
program saves).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.process import (
    TIMED_OUT,
    EventPipe,
    WorkerProcess,
    child_main,
    interruptible,
    worker_env,
)
from bench.retrieval import contenders, synth
from bench.retrieval.contenders import Contender
from bench.timing import now_ns, seconds

PHASES = ("transpose", "matmul", "top_k", "transfer")


def _median_ms(fn: Any, calls: int) -> float:
    fn()  # first call: compilation, first-touch allocation
    times = []
    for _ in range(calls):
        start = now_ns()
        fn()
        times.append(seconds(start, now_ns()) * 1e3)
    return float(np.median(times))


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """In the contender's process: build, then time the search and each phase."""
    from bench.retrieval.worker import load_searcher

    searcher = load_searcher(job["target"], job["options"])
    searcher.build(np.array(np.load(job["candidates"], mmap_mode="r")))
    queries = searcher.to_device(np.load(job["queries"])[: job["batch"]])
    k, calls = job["k"], job["calls"]
    out = {"total": _median_ms(lambda: searcher.to_numpy(searcher.search(queries, k)), calls)}
    for name, fn in searcher.phases(queries, k).items():
        out[name] = _median_ms(fn, calls)
    return out


def _row(name: str, t: dict[str, Any]) -> str:
    cells = [f"{t[p]:.0f}" if p in t else "-" for p in PHASES]
    rest = t["total"] - sum(t.get(p, 0.0) for p in PHASES)
    other = f"{rest:.0f}" if any(p in t for p in PHASES) else "-"
    return f"| {name} | {t['total']:.0f} | " + " | ".join(cells) + f" | {other} |"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.studies.retrieval_profile",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", default="numpy,faiss-flat,jax,torch,keras-jax,keras-tf,keras-torch")
    p.add_argument("--candidates", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per contender")
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Profile each contender in its own process; print and optionally write the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.worker:
        child_main(lambda events: _worker_main(args.worker, events))
    chosen = contenders.select(args.impl)
    command = "python -m bench.studies.retrieval_profile " + shlex.join(argv)
    lines = ["Produced by:", "", "    " + command, "",
             "Phases are the searcher's own ops timed apart, eager (for jit and xla modes",
             "too: their fused program is 'total'); 'other' = total minus the phases.", "",
             f"Per-call median ms at N={args.candidates:,}, dim {args.dim}, k {args.k}, "
             f"batch {args.batch} ({args.calls} calls after one untimed):", "",
             "| contender | total | " + " | ".join(PHASES) + " | other |",
             "|" + "---|" * (len(PHASES) + 3)]
    # SIGTERM as Ctrl-C: the watch in _profile then kills the worker on the way out.
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        files = synth.generate(args.candidates, args.dim, args.batch, args.seed, Path(tmp))
        for c in chosen:
            job = {"target": c.target, "options": dict(c.options), "candidates":
                   str(files.candidates), "queries": str(files.queries), "k": args.k,
                   "batch": args.batch, "calls": args.calls}
            lines.append(_profile(c, job, Path(tmp), args.timeout))
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def _profile(c: Contender, job: dict[str, Any], folder: Path, timeout_s: float) -> str:
    """One contender's table row, from its own worker process."""
    job_path = folder / f"{c.name}.json"
    job_path.write_text(json.dumps(job))
    proc = WorkerProcess("bench.studies.retrieval_profile", ["--worker", str(job_path)],
                         worker_env(c.env), folder / f"{c.name}.log")
    got: dict[str, Any] = {}
    if proc.watch(timeout_s, got.update) == TIMED_OUT:
        return f"| {c.name} | timed out after {timeout_s:g} s |"
    if proc.returncode or "timings" not in got:
        last = (proc.log_tail().splitlines() or [f"exit {proc.returncode}"])[-1]
        return f"| {c.name} | failed: {last} |"
    return _row(c.name, got["timings"])


def _worker_main(job_path: Path, events: EventPipe) -> int:
    events("timings", timings=worker(json.loads(job_path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
