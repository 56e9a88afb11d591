"""`python -m bench report`: tables, plots and parity verdicts from stored records only.

Reads `<results>/records.jsonl` (bench/store.py; by default results/runs, the
committed study; `bench run` writes to results/local unless told otherwise),
never runs anything, and writes under `--out` (by default results/ for the
default --results, else the --results dir):
README.md, training.csv, retrieval_latency.csv, parity.csv and plots/*.png (and
the CSVs of the sections the records call for: shared-start parity, scaling,
data parallel).
Rerunning on the same records rewrites identical README and CSV bytes.

Example:
    python -m bench report --baseline keras-jax --check
    python -m bench report --results results/local    # your own runs, report in results/local
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from bench import paths
from bench.errors import UsageError
from bench.store import RECORDS_FILE, ResultsStore, check_writable_dir

log = logging.getLogger(__name__)

DEFAULT_RESULTS = paths.STUDY_RUNS  # the committed study's records
DEFAULT_OUT = paths.STUDY_REPORT  # the committed report: results/README.md
DEFAULT_RETRIEVAL = paths.STUDY_RETRIEVAL  # the committed retrieval study


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `report` sub-command."""
    from bench.report.parity import DEFAULT_BASELINE, DEFAULT_MARGIN  # no matplotlib here

    p = subparsers.add_parser(
        "report", help="write comparison tables, plots and parity verdicts from stored records",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                   help=f"directory holding records.jsonl (default: {DEFAULT_RESULTS})")
    p.add_argument("--out", type=Path, default=None,
                   help=f"where to write the report (default: {DEFAULT_OUT} with the default "
                        "--results, else the --results directory)")
    p.add_argument("--baseline", default=DEFAULT_BASELINE,
                   help=f"implementation ratios and verdicts compare against "
                        f"(default: {DEFAULT_BASELINE})")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help=f"equivalence margin on final top-100 accuracy, absolute "
                        f"(default: {DEFAULT_MARGIN})")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when any parity verdict is 'different' (accuracy; shared-start "
                        "and 1-vs-N devices steps, unless the pair names a known cause)")
    p.add_argument("--retrieval-results", type=Path, default=None, metavar="DIR",
                   help=f"`bench retrieval`'s results dir to include (default: "
                        f"{DEFAULT_RETRIEVAL} with the default --results, else "
                        "<results>/retrieval; either only when it holds records)")
    p.add_argument("--no-plots", action="store_true",
                   help="write the markdown and CSV tables only (no matplotlib)")
    p.add_argument("--pytest-benchmark", type=Path, action="append", default=[], metavar="FILE",
                   help="a pytest-benchmark JSON file to tabulate too (repeatable)")
    p.add_argument("--export-pytest-benchmark", type=Path, default=None, metavar="FILE",
                   help="also write the ok runs' epoch timings as pytest-benchmark JSON")
    p.set_defaults(func=run)
    return p


def _retrieval_dir(args: argparse.Namespace) -> Path | None:
    """The retrieval store to include, or None; UsageError when a given one is unreadable."""
    given: Path | None = args.retrieval_results
    if given is None:
        # results/local/retrieval is where `bench retrieval` writes by default.
        default = DEFAULT_RETRIEVAL if args.results == DEFAULT_RESULTS \
            else args.results / "retrieval"
        return default if (default / RECORDS_FILE).is_file() else None
    if not (given / RECORDS_FILE).is_file():
        raise UsageError(f"no {RECORDS_FILE} in --retrieval-results {given}")
    return given


def _validate(args: argparse.Namespace) -> Path:
    """Check every input before anything is written; returns the output directory."""
    results: Path = args.results
    try:
        is_dir, has_records = results.is_dir(), (results / RECORDS_FILE).is_file()
    except OSError as exc:  # a name too long...
        raise UsageError(f"results dir {results}: {exc.strerror or exc}") from None
    if not is_dir:
        raise UsageError(f"results dir {results} does not exist or is not a directory; "
                         "run `python -m bench run` first or pass --results DIR")
    if not has_records:
        raise UsageError(f"no {RECORDS_FILE} in {results}: nothing to report")
    if not (math.isfinite(args.margin) and args.margin > 0):
        raise UsageError(f"--margin must be a positive number, got {args.margin}")
    for f in args.pytest_benchmark:
        if not f.is_file():
            raise UsageError(f"pytest-benchmark file {f} does not exist")
    if args.out is not None:
        out: Path = args.out
    else:
        out = DEFAULT_OUT if results == DEFAULT_RESULTS else results
    check_writable_dir(out, "--out")
    export = args.export_pytest_benchmark
    if export is not None and not export.parent.is_dir():
        raise UsageError(f"cannot write {export}: {export.parent} is not a directory")
    if export is not None and export.is_dir():
        raise UsageError(f"--export-pytest-benchmark {export} is a directory; give a file name")
    return out


def run(args: argparse.Namespace) -> int:
    """Build and write the report; 1 under --check when any verdict is `different`."""
    out = _validate(args)
    retrieval_dir = _retrieval_dir(args)  # its errors too come before anything is written
    from bench.report import build, files, pytest_bench  # matplotlib loads here, not at CLI start

    records = list(ResultsStore(args.results).iter_dicts())
    retrieval = list(ResultsStore(retrieval_dir).iter_dicts()) if retrieval_dir else []
    report = build.build(records, args.results, baseline=args.baseline, margin=args.margin,
                         pytest_files=list(args.pytest_benchmark),
                         retrieval_records=[r for r in retrieval if r.get("kind") == "retrieval"])
    written = files.write(report, out, with_plots=not args.no_plots)
    print(f"report: {len(report.groups)} comparable group(s) from {len(records)} record(s); "
          f"wrote {len(written)} file(s) under {out}")
    for g in report.groups:
        for v in g.verdicts:
            print(f"  layers {g.key.layer_sizes} {v.impl} vs {v.baseline}: {v.verdict}")
    if args.export_pytest_benchmark is not None:
        runs = [r for g in report.groups for r in g.runs]
        n = pytest_bench.export(runs, args.export_pytest_benchmark)
        print(f"exported {n} benchmark(s) to {args.export_pytest_benchmark}")
    dp = report.data_parallel
    for pair in dp.parity.pairs if dp else []:
        print(f"  layers {pair.layer_sizes} {pair.impl} vs {pair.baseline}: {pair.verdict}"
              + (" (expected)" if pair.expected else ""))
    expected, different = report.expected_differences(), report.different()
    if args.check and expected:
        print("check: 'different' with a known cause, passed: " + "; ".join(expected))
    if args.check and different:
        print("check failed: 'different' verdicts: " + "; ".join(different))
        return 1
    return 0
