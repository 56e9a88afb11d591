"""`python -m bench run`: train, time and record a sweep of runs.

Every list-valued flag (--impl, --depth, --layers, --seed, --batch-size,
--embedding-dim) multiplies the sweep; each run happens in its own worker
process (bench/run/runner.py). Records go to `<results>/records.jsonl`
(default results/local, git-ignored, relative to the current directory; the
committed study was written with `--results results/runs`, see bench/paths.py).

`--impl all` means the five primary implementations (bench.registry.PRIMARY:
keras-jax, keras-tf, keras-torch, jax, torch); variants such as jax-scan or
torch-compile are named explicitly. `--impl package.module:Class` and
`--dataset package.module:function` run out-of-tree code (see bench/run/sweep.py).

Every check of the input happens before anything is written or started; a
bad input is one line on stderr and exit code 2. Numbers must be sane, not
only well typed (bench/spec.py BOUNDS): finite, seeds 0..2^32-1, at most
10,000 epochs and 10,000 runs in one sweep (counted before it is expanded),
and a model whose memory estimate (parameters, gradients, Adagrad state, one
batch's activations) fits this machine; the results folder must be appendable,
and the --save-embeddings folder writable.

`--executor ray` runs the sweep on a Ray cluster (`--ray-address auto|HOST:PORT`;
without it, a local Ray instance): one Ray task per run, at most one CPU run per
node (`--runs-per-node`) or one GPU per run, records appended here by this process
(bench/run/ray_executor.py; needs `pip install 'deeprec-bench[ray]'`). Everything
else (flags, records, exit codes, --resume, --dry-run) is the same.

`--steps-per-epoch N` caps every epoch at its first N batches and `--eval-rows N`
the evaluated test split at its first N rows: workloads too long for a machine are
capped rather than shrunk. Both are RunSpec fields (in the spec hash and the
report's comparability key) and left out of the record while unset.

`--devices N` trains each run data-parallel over N devices at the same global
batch (--batch-size, which N must divide), each framework by its own mechanism
(bench.registry.DATA_PARALLEL; the others refuse): jax and jax-padded over a
jax.sharding.Mesh, keras-jax with keras.distribution.DataParallel, keras-tf
under tf.distribute.MirroredStrategy, torch and torch-dedup with
DistributedDataParallel (N processes; gloo on a CPU, NCCL on GPUs). On a CPU
the devices are simulated: XLA host devices (jax), logical TensorFlow CPUs,
torch ranks sharing the cores. A RunSpec field, left out of the spec while 1.

`--split seed` gives each run its own train/test split, seeded by its --seed (so
runs of one seed share a split across implementations: paired); `--split N` one
split seed N for all. The default, `cache`, is the cache's fixed split (seed 42);
a RunSpec field, left out of the spec while `cache` (bench.data.dataset.Dataset.resplit).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import envinfo, paths, registry
from bench.data import names
from bench.data.cache import DatasetRef, resolve
from bench.data.dataset import Vocabulary
from bench.errors import EXIT_INTERRUPTED, UsageError
from bench.record import STATUS_OK
from bench.registry import is_target
from bench.run import sweep
from bench.run.executors import Executor, LocalExecutor
from bench.run.progress import SweepProgress
from bench.run.runner import Options, Runner, SweepInterrupted
from bench.run.summary import check_warnings, failures, format_table
from bench.spec import BOUNDS, Bound, check_devices, check_fits, check_split
from bench.store import RECORDS_FILE, check_results_dir, check_writable_dir

log = logging.getLogger(__name__)

DEFAULT_RESULTS = paths.LOCAL_RUNS
DEFAULT_TIMEOUT_S = 3600.0
EXIT_FAILED_RUNS = 1  # some run did not end ok


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `run` and its flags."""
    p = subparsers.add_parser(
        "run",
        help="train and time implementations (one worker process per run)",
        description=__doc__,
        epilog="Exit codes: 0 every run ok, 1 some run failed or timed out, "
        "2 bad input (nothing written), 130 interrupted.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--impl", default="keras-jax",
                   help="name, comma list, 'all' (the 5 primary) or module:Class")
    p.add_argument("--depth", default="3",
                   help="tower depth(s): 1 -> 32, 2 -> 64,32, 3 -> 128,64,32 (3)")
    p.add_argument("--layers", action="append",
                   help="explicit layer sizes, e.g. 256,128,32 (repeatable; overrides --depth)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per run (30)")
    p.add_argument("--steps-per-epoch", type=int, default=None, metavar="N",
                   help="train only the first N batches of every epoch (default: all); "
                        "recorded in the spec, so capped runs are compared only with each other")
    p.add_argument("--eval-rows", type=int, default=None, metavar="N",
                   help="evaluate on the first N rows of the (shuffled) test split (default: "
                        "all); recorded in the spec")
    p.add_argument("--batch-size", default="1000", help="batch size(s) (1000)")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="train each run data-parallel over N devices at the same global batch "
                        "(1); on a CPU, N simulated devices (jax, tf) or N gloo processes (torch)")
    p.add_argument("--embedding-dim", default="32", help="embedding dimension(s) (32)")
    p.add_argument("--learning-rate", type=float, default=0.05, help="Adagrad rate (0.05)")
    p.add_argument("--seed", default="0", help="seed(s): 0, 0,1,2 or a range 0-4")
    p.add_argument("--split", default="cache", metavar="cache|seed|N",
                   help="the train/test split: cache (the cache's own, fixed; default), seed "
                        "(each run's own, seeded by its --seed) or N (split seed N for every "
                        "run); the ratings re-split 80/20 as preprocessing does with its split "
                        "seed (42 for the cache's); recorded in the spec")
    p.add_argument("--repeats", type=int, default=1, help="runs of every spec (1)")
    p.add_argument("--validation-freq", type=int, default=5, help="evaluate every N epochs (5)")
    p.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                   help="Keras jit_compile (auto); native impls always compile")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="auto: the GPU when nvidia-smi lists one, else the CPU")
    p.add_argument("--dataset", default="ml-100k", help="dataset name (ml-100k)")
    p.add_argument("--cache-dir", default=None, help="dataset cache directory")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                   help=f"results directory ({DEFAULT_RESULTS})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds per run before it is killed ({DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--resume", action="store_true",
                   help="skip runs already recorded ok, on any machine (the local executor "
                   "says when some were recorded only on another one)")
    p.add_argument("--retrieve-seconds", type=float, default=2.0,
                   help="timed seconds per retrieval batch size (2)")
    p.add_argument("--save-embeddings", type=Path, default=None, metavar="DIR",
                   help="after training, write each run's candidate and test-query embeddings "
                        "to DIR/<run_id>/ (candidates.npy, queries.npy, meta.json)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: one run at a time on this machine (default); ray: one Ray "
                        "task per run on a cluster (pip install 'deeprec-bench[ray]')")
    p.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="with --executor ray: the cluster to join (default: start a local "
                        "Ray instance)")
    p.add_argument("--ray-auth", choices=("token", "disabled"),
                   default=os.environ.get("RAY_AUTH_MODE") or "token",
                   help="with --executor ray: RAY_AUTH_MODE, as every node of the cluster "
                        "runs (default: $RAY_AUTH_MODE, else token)")
    p.add_argument("--runs-per-node", type=int, default=1, metavar="N",
                   help="with --executor ray: CPU runs a node takes at once, each pinned to "
                        "1/N of its cores (1: one run per node, for timing; recorded)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="list the sweep's runs (and what --resume skips), run nothing")
    p.set_defaults(func=run_command)
    return p


# The bounds of run's own numbers (the RunSpec's are bench.spec.BOUNDS).
_TIMEOUT = Bound("--timeout", 0, 30 * 86400, "30 days", open_low=True)
_RETRIEVE = Bound("--retrieve-seconds", 0, 3600, "an hour per batch size", open_low=True)
_REPEATS = Bound("--repeats", 1, sweep.MAX_RUNS, "the most runs in one sweep")
_RUNS_PER_NODE = Bound("--runs-per-node", 1, 1024, "runs sharing one node's cores")
RAY_EXTRA = "pip install 'deeprec-bench[ray]'"


def check_executor(args: argparse.Namespace) -> None:
    """The executor flags agree, and Ray is installed where it is asked for (UsageError)."""
    _RUNS_PER_NODE.check(args.runs_per_node)
    if args.executor != "ray":
        given = [f for f, v in (("--ray-address", args.ray_address),
                                ("--runs-per-node", args.runs_per_node != 1)) if v]
        if given:
            raise UsageError(f"{given[0]} needs --executor ray")
        return
    if not ray_installed():
        raise UsageError(f"--executor ray: Ray is not installed; {RAY_EXTRA}")


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def build_runs(args: argparse.Namespace) -> list[sweep.Run]:
    """Check every flag and expand the sweep (UsageError on bad input).

    Every number is bounded and the sweep counted before it is expanded.
    """
    for field in ("epochs", "validation_freq", "learning_rate"):
        BOUNDS[field].check(getattr(args, field))
    for field in ("steps_per_epoch", "eval_rows"):
        if getattr(args, field) is not None:
            BOUNDS[field].check(getattr(args, field))
    for bound, value in ((_TIMEOUT, args.timeout), (_RETRIEVE, args.retrieve_seconds),
                         (_REPEATS, args.repeats)):
        bound.check(value)
    names.check_name(args.dataset)
    entries = sweep.resolve_impls(args.impl)
    depths = None if args.layers else sweep.parse_field(args.depth, "depth")
    stacks = sweep.layer_stacks(depths, args.layers)
    seeds = sweep.parse_field(args.seed, "seed")
    split = check_split(args.split)
    batches = sweep.parse_field(args.batch_size, "batch_size")
    dims = sweep.parse_field(args.embedding_dim, "embedding_dim")
    sweep.check_sweep_size(len(entries), len(stacks), len(seeds), args.repeats, len(batches),
                           len(dims))
    check_devices(args.devices, batches)
    for entry in entries:
        registry.check_devices(entry, args.devices)
    runs = []
    for batch in batches:
        for dim in dims:
            runs += sweep.expand(
                entries, stacks, seeds, args.repeats, epochs=args.epochs, batch_size=batch,
                embedding_dim=dim, learning_rate=args.learning_rate,
                validation_freq=args.validation_freq, jit=args.jit, device=args.device,
                dataset=args.dataset, steps_per_epoch=args.steps_per_epoch,
                eval_rows=args.eval_rows, devices=args.devices, split=split,
            )
    return runs


def _check_sizes(runs: list[sweep.Run], dataset: str, vocab: Vocabulary | None,
                 rows: int) -> None:
    """Every run's batch fits `rows` and its model this machine (vocab None: a lower bound)."""
    too_big = [r.spec.batch_size for r in runs if r.spec.batch_size > rows]
    if too_big:
        raise UsageError(f"--batch-size {too_big[0]} is larger than the training set "
                         f"({'at most ' if vocab is None else ''}{rows} rows of {dataset})")
    for spec in {dataclasses.replace(r.spec, impl="", seed=0) for r in runs}:
        check_fits(spec, vocab)


def _resolve(args: argparse.Namespace, runs: list[sweep.Run]) -> DatasetRef:
    """The verified dataset; what can be refused without it is refused before it is built."""
    cache_dir = Path(args.cache_dir) if args.cache_dir else None
    own = sorted({r.spec.impl for r in runs if not r.entry.shared_start})
    if own and is_target(args.dataset):  # keras-reference* read the cache's raw records
        raise UsageError(f"--impl {own[0]}: prepares its own data from a cached dataset's raw "
                         f"records; --dataset {args.dataset} is a factory without them")
    if not is_target(args.dataset):
        _check_sizes(runs, args.dataset, None, names.parse_dataset(args.dataset).max_rows)
    # Numpy only, safe in the parent: verified once here, the workers trust it.
    dataset = resolve(args.dataset, cache_dir)
    _check_sizes(runs, args.dataset, dataset.vocab, dataset.train_rows)
    return dataset


def _options(args: argparse.Namespace, device: str, dataset: DatasetRef) -> Options:
    return Options(
        results_dir=args.results,
        dataset=dataset,
        timeout_s=args.timeout,
        device_env=envinfo.device_env(device),
        environment=envinfo.capture(),
        git=envinfo.git_info(),
        retrieve_budget_s=args.retrieve_seconds,
        resume=args.resume,
        save_embeddings=args.save_embeddings,
    )


@contextlib.contextmanager
def _executor(args: argparse.Namespace, options: Options) -> Iterator[Executor]:
    """The executor the flags ask for, connected for the sweep's length."""
    if args.executor == "local":
        yield LocalExecutor(options.environment)
        return
    # Ray reads its auth mode once, when it is imported: set it first.
    os.environ["RAY_AUTH_MODE"] = args.ray_auth
    from bench.run import ray_executor  # imports Ray: only when asked for

    settings = ray_executor.Settings(
        address=args.ray_address, auth=args.ray_auth, runs_per_node=args.runs_per_node,
        device=args.device, cache_dir=args.cache_dir)
    ray_executor.connect(settings)
    try:
        yield ray_executor.RayExecutor(settings, options.dataset.content_hash)
    finally:
        ray_executor.disconnect()


def _note_other_machines(runner: Runner, skip: set[int]) -> None:
    """Say when --resume skips runs recorded only on another machine than this one.

    --resume matches spec, repeat and data, not the machine, so a study resumed on another
    machine goes on; but the report groups runs by machine, so neither machine's group
    then holds the whole sweep.
    """
    count, machines = runner.recorded_elsewhere(skip)
    if count:
        where = "; ".join(f"{m}: {n}" for m, n in sorted(machines.items()))
        print(f"note: --resume skips {count} run(s) recorded only on another "
              f"machine ({where}); the report groups runs by machine, so this machine's group "
              "will lack them: to compare them here, run them on this machine into another "
              "--results directory", file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    """Validate, run the sweep, print the summary; exit 0 when every run was ok."""
    check_executor(args)
    if args.executor == "local" or args.device != "gpu":
        # A cluster's GPUs are the nodes' (checked when it is joined), not this machine's.
        args.device = envinfo.resolve_device(args.device)
    runs = build_runs(args)
    check_results_dir(args.results)
    if args.save_embeddings is not None:
        check_writable_dir(args.save_embeddings, "--save-embeddings")
    dataset = _resolve(args, runs)
    options = _options(args, args.device, dataset)
    runner = Runner(runs, options, listener=lambda *a: None)
    skip = runner.skipped()
    todo = [r for i, r in enumerate(runs) if i not in skip]
    if args.dry_run:
        for i, run in enumerate(runs):
            print(f"{i + 1:>4}  {run.label()}  spec {run.spec.spec_hash()}"
                  + ("  (recorded ok: skipped)" if i in skip else ""))
        return 0
    with _executor(args, options) as runner.executor:
        skipped = f"{len(skip)} already recorded ok (--resume), " if args.resume else ""
        print(f"{len(runs)} run(s), {skipped}{len(todo)} to do on the {args.executor} "
              f"executor; records: {args.results / 'records.jsonl'}", file=sys.stderr)
        if args.executor == "local" and skip:
            _note_other_machines(runner, skip)
        progress = SweepProgress(todo, enabled=not args.no_progress and sys.stderr.isatty())
        runner.listener = progress
        try:
            records = runner.run_all(skip)
            code = 0 if all(r.status == STATUS_OK for r in records) else EXIT_FAILED_RUNS
        except SweepInterrupted as stop:
            records, code = stop.records, EXIT_INTERRUPTED
        finally:
            progress.close()
    print(format_table(records))
    problems = "\n".join(filter(None, [failures(records), check_warnings(records)]))
    if problems:
        print(problems, file=sys.stderr)
    print(f"records: {args.results / RECORDS_FILE}; tables and plots: "
          f"python -m bench report --results {shlex.quote(str(args.results))}", file=sys.stderr)
    return code
