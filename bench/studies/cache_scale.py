"""How long building and loading a large synthetic cache takes, and how much memory building needs.

    python -m bench.studies.cache_scale [--dataset NAME] [--repeats 3] [--out F.md]

Each repeat, in a fresh temporary cache folder:

- build: a child process (bench/process.py) generates, preprocesses and
  writes the cache (`cache.ensure_dataset`, what `bench data build` does
  before its summary). Its wall time is the parent's, from spawn to exit
  (interpreter start and imports included); its peak RSS is the child's own
  `ru_maxrss`, compared with the cache's size on disk (allocated blocks).
- load: a fresh child calls `cache.load_ref` (a run worker's loader; the
  parent verified the bytes, as `bench run` does) and then touches what a run
  touches: every feature column and label of both splits, summed in full
  (memory-mapped pages read, title and genre columns gathered) and the
  candidate table. Load time is the loader plus the touching. The page cache
  is warm (the cache was just written), as for a run after `data build`.

Targets (issue 13), judged on the median of the repeats: build under 60 s;
build peak RSS under 4x the cache's size; load under 2 s. Timings on a shared
machine vary: compare a run's own figures, and quote the load average printed
with them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import envinfo
from bench.process import EventPipe, WorkerProcess, child_main, worker_env

DEFAULT_DATASET = "synthetic:users=1000000,movies=100000,ratings=10000000"
TIMEOUT_S = 600.0
BUILD_S, RSS_RATIO, LOAD_S = 60.0, 4.0, 2.0
RESULT = "result"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.studies.cache_scale",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="a synthetic dataset name")
    parser.add_argument("--repeats", type=int, default=3, help="fresh builds and loads (3)")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--child", choices=("build", "load"), help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(lambda events: _child(args, events))
    from bench.data.names import parse_dataset
    from bench.errors import UsageError

    try:
        spec = parse_dataset(args.dataset)  # bad input stops here, before anything starts
    except UsageError as exc:
        parser.error(str(exc))
    if spec.kind != "synthetic" or args.repeats < 1:
        parser.error("--dataset must be synthetic:... and --repeats at least 1")
    rows = [measure_once(spec.name) for _ in range(args.repeats)]
    text = table(spec.name, rows, sys.argv[1:] if argv is None else argv)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


def measure_once(name: str) -> dict[str, float]:
    """One fresh build and one load of `name` in a temporary cache folder, in child processes."""
    from bench.data import cache

    root = Path(tempfile.mkdtemp(prefix="deeprec-cache-scale-"))
    try:
        build = _run_child(["--child", "build", "--dataset", name, "--cache-dir", str(root)], root)
        ref = cache.resolve(name, root, build=False)  # the run parent's full verification
        size = disk_bytes(Path(ref.location))
        load = _run_child(["--child", "load", "--ref", json.dumps(ref.to_dict())], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "build_s": build["wall_s"], "build_peak_mb": build["peak_rss_mb"],
        "cache_mb": size / 2**20, "rss_ratio": build["peak_rss_mb"] * 2**20 / size,
        "load_ref_s": load["load_ref_s"], "touch_s": load["touch_s"],
        "load_s": load["load_ref_s"] + load["touch_s"], "load_peak_mb": load["peak_rss_mb"],
    }


def _run_child(args: list[str], folder: Path) -> dict[str, Any]:
    """Run this module as a child with `args`; its result event plus the wall time seen here."""
    worker = WorkerProcess("bench.studies.cache_scale", args, worker_env(),
                           folder / f"child-{args[1]}.log")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    worker.watch(TIMEOUT_S, lambda e: results.append(e) if e["event"] == RESULT else None)
    wall = time.perf_counter() - started
    if not results:
        raise SystemExit(f"the {args[1]} child failed: {worker.log_tail(2000)}")
    return {**results[0], "wall_s": wall}


def disk_bytes(folder: Path) -> int:
    """Bytes allocated to the files under `folder` (its real target when it is a symlink)."""
    total = 0
    for parent, _, files in os.walk(os.path.realpath(folder)):
        total += sum(os.stat(os.path.join(parent, f)).st_blocks * 512 for f in files)
    return total


def _child(args: argparse.Namespace, events: EventPipe) -> int:
    """The build or load child: do it, send one RESULT event with its figures."""
    if args.child == "build":
        from bench.data import cache

        cache.ensure_dataset(args.dataset, cache_dir=args.cache_dir)
        events(RESULT, peak_rss_mb=peak_rss_mb())
        return 0
    load_ref_s, touch_s = load_and_touch(json.loads(args.ref))
    events(RESULT, load_ref_s=load_ref_s, touch_s=touch_s, peak_rss_mb=peak_rss_mb())
    return 0


def load_and_touch(ref_dict: dict[str, Any]) -> tuple[float, float]:
    """Seconds for `load_ref`, then for reading every array a run reads, in full."""
    from bench.data import cache
    from bench.data.dataset import CANDIDATE_FEATURES, QUERY_FEATURES

    ref = cache.DatasetRef.from_dict(ref_dict)
    started = time.perf_counter()
    data = cache.load_ref(ref)
    loaded = time.perf_counter()
    for split in (data.train, data.test):
        for name in QUERY_FEATURES + CANDIDATE_FEATURES:
            split.features[name].sum()
        split.label.sum()
    for column in data.candidates.values():
        column.sum()
    return loaded - started, time.perf_counter() - loaded


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_ROWS: list[tuple[str, str, str, Callable[[float], bool] | None]] = [
    ("build_s", "build: generate, preprocess, write (s)", f"< {BUILD_S:g}",
     lambda v: v < BUILD_S),
    ("rss_ratio", "build peak RSS / cache size on disk", f"< {RSS_RATIO:g}x",
     lambda v: v < RSS_RATIO),
    ("load_s", "load: load_ref + touch every column (s)", f"< {LOAD_S:g}", lambda v: v < LOAD_S),
    ("build_peak_mb", "build peak RSS (MiB)", "", None),
    ("cache_mb", "cache size on disk (MiB)", "", None),
    ("load_ref_s", "load_ref alone (s)", "", None),
    ("touch_s", "touching the columns (s)", "", None),
    ("load_peak_mb", "load child's peak RSS (MiB)", "", None),
]


def table(name: str, rows: list[dict[str, float]], argv: list[str]) -> str:
    """The markdown report: one line per measure, min / median / max over the repeats."""
    lines = [
        f"# Cache build and load at scale: `{name}`", "",
        f"`python -m bench.studies.cache_scale {' '.join(argv)}`: {len(rows)} repeat(s), "
        f"{envinfo.cpu_model()}, {os.cpu_count()} CPUs, load average "
        f"{' / '.join(f'{v:.2f}' for v in envinfo.load_average())} at the end.", "",
        "| measure | target | min | median | max | pass (median) |",
        "|---|---|---|---|---|---|",
    ]
    for key, label, target, check in _ROWS:
        values = [row[key] for row in rows]
        median = statistics.median(values)
        verdict = "" if check is None else ("pass" if check(median) else "FAIL")
        figures = " | ".join(_number(v) for v in (min(values), median, max(values)))
        lines.append(f"| {label} | {target} | {figures} | {verdict} |")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


if __name__ == "__main__":
    sys.exit(main())
