"""`python -m bench retrieval`: top-k retrieval at scale, every backend against numpy and faiss.

Generates clustered synthetic embeddings once per (candidates, dim) -- or, with
--embeddings, takes the ones a trained model wrote -- runs every contender in
its own worker process, stores one record per setting (kind "retrieval") in
--results, prints a summary and writes the report section (retrieval.md,
plots/) there.

Examples:
    python -m bench retrieval --list
    python -m bench retrieval --candidates 10000 --dim 32 --k 10,100 --batch 1,100 \\
        --impl numpy,faiss-flat,jax --results /tmp/retrieval

Trained embeddings instead of random ones: the folder that
`python -m bench run --save-embeddings DIR` wrote (DIR/<run_id>: candidates.npy,
queries.npy, meta.json); N and dim come from the files, the query pool is the
first max(--batch) test rows; records say workload "trained" and the report
shows them in their own section, never in one table with the random ones:
    python -m bench retrieval --embeddings DIR/<run_id> --k 10,100 --batch 1,100,1000 \\
        --results results/retrieval

CI's small version (tests/retrieval/test_ci_small.py runs it with one
contender per framework, about a minute on 2 cores):
    python -m bench retrieval --candidates 10000 --dim 32 --k 10,100 --batch 1,100 \\
        --repeats 5 --min-calls 2 --budget 0.2 --results /tmp/retrieval-ci

Exit codes: 0 every setting ok, 1 some setting failed or timed out (its group's
worker crashed, hung past --timeout or raised; the study goes on), 2 bad input
(nothing written), 130 interrupted (Ctrl-C or SIGTERM: the worker is killed,
the setting in flight and every one still to come are recorded "interrupted",
the temporary data folder is removed; retrieval.md is not rewritten).
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
from pathlib import Path

from bench import paths
from bench.errors import EXIT_INTERRUPTED, UsageError
from bench.retrieval import contenders, trained
from bench.retrieval.report import summary_text, write_section
from bench.retrieval.runner import Plan, StudyInterrupted, run_study
from bench.run.sweep import parse_int_list
from bench.spec import BOUNDS, Bound, format_bytes
from bench.store import ResultsStore, check_results_dir

log = logging.getLogger(__name__)

DEFAULT_RESULTS = paths.LOCAL_RETRIEVAL  # the committed study: --results results/retrieval
DEFAULT_CANDIDATES, DEFAULT_DIMS = "1682,10000,100000,1000000", "32,128"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `retrieval` sub-command."""
    p = subparsers.add_parser(
        "retrieval", help="top-k retrieval at scale: every backend vs numpy and faiss",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--candidates", default=None,
                   help=f"comma list of candidate counts (default: {DEFAULT_CANDIDATES}; "
                        "not with --embeddings)")
    p.add_argument("--dim", default=None,
                   help=f"comma list of dims (default: {DEFAULT_DIMS}; not with --embeddings)")
    p.add_argument("--embeddings", type=Path, default=None, metavar="DIR",
                   help="search trained embeddings instead of random ones: the folder "
                        "`bench run --save-embeddings` wrote (DIR/<run_id> with candidates.npy, "
                        "queries.npy, meta.json); N and dim come from its files")
    p.add_argument("--k", default="10,100",
                   help="comma list of top-k depths (default: %(default)s)")
    p.add_argument("--batch", default="1,100,1000",
                   help="comma list of queries per call (default: %(default)s)")
    p.add_argument("--impl", default=None,
                   help="comma list of contenders (default: every installed one; see --list)")
    p.add_argument("--list", action="store_true", help="list the contenders and exit")
    p.add_argument("--repeats", type=int, default=20,
                   help="most timed calls per setting (default: %(default)s)")
    p.add_argument("--min-calls", type=int, default=3,
                   help="fewest timed calls per setting, even past --budget (default: %(default)s)")
    p.add_argument("--budget", type=float, default=2.0,
                   help="timed seconds per setting before calls stop (default: %(default)s)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                   help="results directory (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random vectors (default: %(default)s; unused with "
                        "--embeddings)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds one contender may spend on one (candidates, dim) "
                        "(default: %(default)s)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write retrieval.md and plots into --results")
    p.set_defaults(func=run)
    return p


_REPEATS = Bound("--repeats", 1, math.inf)  # --budget stops the calls first
_MIN_CALLS = Bound("--min-calls", 1, 1_000_000, "calls made even past --budget")
_BUDGET = Bound("--budget", 0, 86400, "a day per setting", open_low=True)
_TIMEOUT = Bound("--timeout", 0, 30 * 86400, "30 days", open_low=True)


def _check_memory(cands: tuple[int, ...], dims: tuple[int, ...],
                  batches: tuple[int, ...]) -> None:
    """UsageError when the largest setting's float32 candidates and score matrix cannot fit."""
    import psutil  # only when checking

    n = max(cands)
    need, have = 4 * n * (max(dims) + max(batches)), psutil.virtual_memory().total
    if need > have:
        raise UsageError(f"--candidates {n} with --dim {max(dims)} and --batch {max(batches)} "
                         f"need about {format_bytes(need)} (candidates and one batch's scores, "
                         f"float32); this machine has {format_bytes(have)}")


def _sizes(args: argparse.Namespace, flags: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """The integer lists of `flags` (no a-b ranges: 1000-1000000 is a typo, not a grid)."""
    defaults = {"--candidates": DEFAULT_CANDIDATES, "--dim": DEFAULT_DIMS}
    texts = {flag: getattr(args, flag[2:]) for flag in flags}
    return {flag: tuple(parse_int_list(defaults[flag] if text is None else text, flag,
                                       ranges=False)) for flag, text in texts.items()}


def _workload(args: argparse.Namespace,
              sizes: dict[str, tuple[int, ...]]) -> trained.Workload | None:
    """--embeddings' checked workload (its N and d put into `sizes`), or None for random."""
    if args.embeddings is None:
        sizes.update(_sizes(args, ("--candidates", "--dim")))
        return None
    given = [flag for flag in ("--candidates", "--dim") if getattr(args, flag[2:]) is not None]
    if given:
        raise UsageError(f"{' and '.join(given)} cannot be given with --embeddings: the number "
                         "of candidates and the dim come from its files")
    workload = trained.load(args.embeddings)
    if max(sizes["--batch"]) > workload.num_queries:
        raise UsageError(f"--batch {max(sizes['--batch'])} exceeds the {workload.num_queries} "
                         f"query rows of --embeddings {args.embeddings}")
    sizes.update({"--candidates": (workload.num_candidates,), "--dim": (workload.dim,)})
    return workload


def build_plan(args: argparse.Namespace) -> Plan:
    """Validate every flag (nothing written yet) and return the study's Plan."""
    sizes = _sizes(args, ("--k", "--batch"))
    workload = _workload(args, sizes)
    cands, ks = sizes["--candidates"], sizes["--k"]
    if max(ks) > min(cands):
        what = "candidates of --embeddings" if workload else "smallest --candidates"
        raise UsageError(f"--k {max(ks)} exceeds the {what} {min(cands)}")
    for bound, value in ((_REPEATS, args.repeats), (_MIN_CALLS, args.min_calls),
                         (_BUDGET, args.budget), (_TIMEOUT, args.timeout),
                         (BOUNDS["seed"], args.seed)):
        bound.check(value)
    _check_memory(cands, sizes["--dim"], sizes["--batch"])
    chosen = contenders.select(args.impl)
    if not chosen:
        raise UsageError("no retrieval contender is installed here")
    check_results_dir(args.results)
    return Plan(candidates=tuple(sorted(cands)), dims=sizes["--dim"], ks=ks,
                batches=sizes["--batch"],
                contenders=tuple(chosen), repeats=args.repeats,
                min_calls=min(args.min_calls, args.repeats), budget_s=args.budget,
                seed=args.seed, timeout_s=args.timeout, results_dir=args.results,
                workload=workload)


def canonical_command(plan: Plan, args: argparse.Namespace) -> str:
    """The command line that reproduces this study (stored in every record)."""
    join = lambda xs: ",".join(map(str, xs))  # noqa: E731
    data = (["--embeddings", str(plan.workload.folder)] if plan.workload else
            ["--candidates", join(plan.candidates), "--dim", join(plan.dims)])
    argv = ["retrieval", *data, "--k", join(plan.ks), "--batch", join(plan.batches),
            "--impl", join(c.name for c in plan.contenders), "--repeats", str(plan.repeats),
            "--min-calls", str(plan.min_calls), "--budget", f"{plan.budget_s:g}",
            *([] if plan.workload else ["--seed", str(plan.seed)]),
            "--timeout", f"{plan.timeout_s:g}", "--results", str(args.results)]
    return "python -m bench " + shlex.join(argv)


def _list() -> int:
    for c in contenders.CONTENDERS.values():
        state = "installed" if c.installed() else f"missing {', '.join(c.missing())}"
        print(f"{c.name:22} {'exact ' if c.exact else 'approx'} {state:12} {c.description}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the study, print the summary, write the report section."""
    if args.list:
        return _list()
    plan = build_plan(args)
    from tqdm import tqdm  # only when a study runs

    command = canonical_command(plan, args)
    try:
        with tqdm(total=plan.total(), desc="retrieval", unit="setting") as bar:
            records = run_study(plan, progress=bar.update, command=command)
    except StudyInterrupted as stop:  # every unfinished setting is recorded "interrupted"
        print(summary_text(stop.records))
        return EXIT_INTERRUPTED
    print(summary_text(records))
    if not args.no_report:
        write_section(list(ResultsStore(plan.results_dir).iter_dicts()), plan.results_dir)
        print(f"report section: {plan.results_dir / 'retrieval.md'}")
    failed = sum(r["status"] != "ok" for r in records)
    return 1 if failed else 0
