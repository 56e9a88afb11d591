"""`python -m bench parity`: shared-start, step-level parity, stored for the report.

    python -m bench parity [--impl all|a,b] [--depth 1,3] [--steps 20] [--dataset ml-100k]
                           [--results DIR] [--cache-dir DIR] [--reference jax]

This command checks the flags and loads the dataset (no framework is imported
here); bench/parity/runner.py draws one set of initial weights (--seed), runs
each implementation, the reference included, in its own worker process from
them for the first --steps batches of data.train, compares each with the
reference and writes `<results>/shared_start_parity.json`
(bench/report/shared_start.py's format). With `--devices 2,4` each
implementation instead runs on one device and on each count, each count is
compared with one device, and every count goes to the one
`<results>/devices_parity.json` (bench/report/devices.py). A worker that crashes, is killed
or overruns --timeout is listed under "failed" and the others go on.
Exit 0 when every run finished (whatever the verdicts), 1 when a worker
failed, 2 on bad input, 130 when interrupted (Ctrl-C or SIGTERM: every
worker is killed, the temporary folder removed, and the JSON is not written,
so an earlier complete one stays as it was).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench import paths, registry
from bench.data.cache import resolve
from bench.data.names import check_name
from bench.errors import EXIT_INTERRUPTED, UsageError
from bench.parity.runner import DEVICES_FILE, Plan, run_parity
from bench.report.shared_start import FILE_NAME
from bench.run.sweep import parse_field, resolve_impls
from bench.spec import BOUNDS, Bound, RunSpec, check_devices, check_fits, layers_for_depth
from bench.store import check_results_dir


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "parity", help="shared-start step-level parity of the implementations",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--devices", default="1", metavar="N[,N...]",
                   help="counts above 1, e.g. 2 or 2,4: each implementation on N (simulated on a "
                        "CPU) devices against itself on one, every N in the one "
                        f"{DEVICES_FILE} (--reference unused)")
    p.set_defaults(func=run)
    return p


_STEPS = Bound("--steps", 1, 1_000_000)
_JOBS = Bound("--jobs", 1, 1_000)
_TIMEOUT = Bound("--timeout", 0, 30 * 86400, "30 days", open_low=True)


def _device_counts(text: str, batch_size: int) -> tuple[int, ...]:
    """--devices: (1,), or the distinct counts above 1 (ascending), each splitting the batch."""
    counts = tuple(sorted(set(parse_field(text, "devices"))))
    if len(counts) > 1 and counts[0] == 1:
        raise UsageError(f"--devices {text}: list only counts above 1 (every count is "
                         "compared with the one-device run, which always runs)")
    for n in counts:
        check_devices(n, [batch_size])
    return counts


def _check_args(args: argparse.Namespace) -> tuple[list[str], list[int], tuple[int, ...]]:
    for bound, value in ((_STEPS, args.steps), (BOUNDS["batch_size"], args.batch_size),
                         (_JOBS, args.jobs), (_TIMEOUT, args.timeout),
                         (BOUNDS["seed"], args.seed)):
        bound.check(value)
    depths = parse_field(args.depth, "depth")
    check_name(args.dataset)
    entries = resolve_impls(args.impl)
    names = [e.name for e in entries]
    reference = resolve_impls(args.reference)
    if len(reference) != 1:
        raise UsageError(f"--reference: one implementation, got {args.reference!r}")
    ref = reference[0].name
    for entry in (*entries, *reference):
        registry.require_shared_start(entry, "bench parity")
    counts = _device_counts(args.devices, args.batch_size)
    for entry in entries:
        registry.check_devices(entry, counts[-1])
    check_results_dir(Path(args.results), files=(FILE_NAME if counts == (1,) else DEVICES_FILE,))
    if counts != (1,):
        return names, depths, counts
    return [ref] + [n for n in names if n != ref], depths, counts


def run(args: argparse.Namespace) -> int:
    """Check the flags and the dataset, run bench/parity/runner.py, print the verdicts."""
    names, depths, counts = _check_args(args)
    try:  # verified once here (numpy only); the workers trust it
        dataset = resolve(args.dataset, Path(args.cache_dir) if args.cache_dir else None,
                          build=False)
    except Exception as exc:  # a missing cache, a bad module:function
        raise UsageError(f"--dataset {args.dataset}: {exc}") from None
    if args.steps > -(-dataset.train_rows // args.batch_size):
        raise UsageError(f"--steps {args.steps}: data.train has only {dataset.train_rows} rows")
    for depth in depths:
        check_fits(RunSpec(impl="", layer_sizes=layers_for_depth(depth),
                           batch_size=args.batch_size), dataset.vocab)
    plan = Plan(names=tuple(names), depths=tuple(depths), steps=args.steps,
                batch_size=args.batch_size, seed=args.seed, dataset=dataset,
                timeout_s=args.timeout, jobs=args.jobs, devices=counts)
    results_dir = Path(args.results)
    written = plan.file_name()
    try:
        doc, failed = run_parity(plan, results_dir)
    except KeyboardInterrupt:
        print(f"interrupted: {results_dir / written} not written", file=sys.stderr)
        return EXIT_INTERRUPTED
    for p in doc["pairs"]:
        expected = " (expected)" if p["expected"] else ""
        print(f"{p['impl']:>14} vs {p['baseline']} {p['layer_sizes']}: {p['verdict']}{expected}"
              f"  max|dloss| {_fmt(p['max_abs_loss_diff'])}"
              f"  max|dw| {_fmt(p['max_abs_weight_diff'])}")
    for j in failed:
        print(f"{j.impl} {j.layer_sizes}: FAILED: {j.error}", file=sys.stderr)
    print(f"wrote {results_dir / written} ({len(doc['pairs'])} pairs)")
    return 1 if failed else 0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2e}"
