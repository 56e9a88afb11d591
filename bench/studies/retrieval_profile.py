"""Where a contender's search time goes: matmul, top-k, transfer, measured apart.

    python -m bench.studies.retrieval_profile --impl jax,torch,keras-tf --candidates 1000000 \\
        --dim 32 --k 100 --batch 1000 --out results/retrieval/profile.md

For one setting it writes the same synthetic data the study uses, then runs
each contender in its own process (`--worker`), which times the whole search
and each of the searcher's `phases()` (first call untimed, then the median
of `--calls`), and writes a markdown table: total, each phase, and what is
left (total minus the phases: dispatch, allocation, what a fused program
saves).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.retrieval import contenders, synth
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
    p = argparse.ArgumentParser(prog="python -m bench.studies.retrieval_profile", description=__doc__,
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
        print(json.dumps(worker(json.loads(args.worker.read_text()))))
        return 0
    chosen = contenders.select(args.impl)
    lines = ["Produced by:", "", "    python -m bench.studies.retrieval_profile " + shlex.join(argv), "",
             "Phases are the searcher's own ops timed apart, eager (for jit and xla modes",
             "too: their fused program is 'total'); 'other' = total minus the phases.", "",
             f"Per-call median ms at N={args.candidates:,}, dim {args.dim}, k {args.k}, "
             f"batch {args.batch} ({args.calls} calls after one untimed):", "",
             "| contender | total | " + " | ".join(PHASES) + " | other |",
             "|" + "---|" * (len(PHASES) + 3)]
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        files = synth.generate(args.candidates, args.dim, args.batch, args.seed, Path(tmp))
        for c in chosen:
            job = {"target": c.target, "options": dict(c.options), "candidates":
                   str(files.candidates), "queries": str(files.queries), "k": args.k,
                   "batch": args.batch, "calls": args.calls}
            job_path = Path(tmp) / f"{c.name}.json"
            job_path.write_text(json.dumps(job))
            try:
                proc = subprocess.run([sys.executable, "-m", "bench.studies.retrieval_profile",
                                       "--worker", str(job_path)], env={**os.environ, **c.env},
                                      capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                lines.append(f"| {c.name} | timed out after {args.timeout:g} s |")
            else:
                if proc.returncode:
                    last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
                    lines.append(f"| {c.name} | failed: {last} |")
                else:
                    lines.append(_row(c.name, json.loads(proc.stdout.strip().splitlines()[-1])))
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
