"""The scaling study: how each framework's cost grows with the data and the embedding tables.

    python -m bench.studies.scaling --dry-run            # the plan and its estimated duration
    python -m bench.studies.scaling                      # every part, into results/scaling
    python -m bench.studies.scaling --part a,b           # only the cost series
    python -m bench report --results results/scaling     # its report: results/scaling/README.md

It runs `python -m bench run` (one sweep per workload, each a child process
through bench/process.py, always with `--resume`, so an interrupted study goes
on where it stopped) and appends every command it runs to
`<results>/commands.txt`, which the report quotes. The grid:

(a) ratings 100k / 1M / 10M at proportional tables: synthetic, users = movies =
    ratings / 100 (1,000 / 10,000 / 100,000 of each; MovieLens has 94-165
    ratings per user and 60-270 per movie, so about the same shape).
(b) user table rows 1k / 100k / 1M at a fixed 1M ratings and 10,000 movies;
    with (a)'s 1M workload (10,000 users) the table series has four points.
    (a) and (b): depth 1 (layers 32: the dense part smallest, so the tables'
    cost shows most), 3 epochs (the first compiles, two are steady), at most
    100 steps an epoch (`--steps-per-epoch`) and 10,000 evaluated test rows
    (`--eval-rows`), validation after the last epoch only, 0.2 s of timed
    retrieval per batch size; seeds 0 and 1 where a run takes under a minute,
    seed 0 beyond (the 10M and 1M-user workloads). Implementations: the five
    primaries and the sparse native variants (jax-sparse, torch-sparse) where
    the registry has them.
(c) ml-1m accuracy: the five primaries, seeds 0-2, depth 1, 10 epochs (8,000
    steps of batch 1000, over three times the 2,400 of the ml-100k study's 30
    epochs), validation every 5, the whole test split; no caps. The report
    gives this group the same tables and TOST verdicts as ml-100k.
(d) embeddings for `bench retrieval`'s trained workload: jax-sparse (the fastest
    at this size) on the 10M workload (100,000 movies), seed 0, 3 whole epochs
    (24,000 steps: capped runs leave most of 100,000 movies at their initial
    weights), `--save-embeddings`; the record names the run whose candidate
    and query embeddings `bench retrieval --embeddings` then searches.

The duration estimate is a rough model of this 2-core machine (bench run's
start-up and framework import per run, step times scaled from the ml-100k
study, dense optimizers paying for whole tables every step); `--dry-run` prints it.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import registry
from bench.studies.commands import command_text, record_command, run_bench, run_in_order

PARTS = ("a", "b", "c", "d")
IMPLS = (*registry.PRIMARY, "jax-sparse", "torch-sparse")
SPARSE = ("keras-tf", "jax-sparse", "torch-sparse")  # update only the rows a batch touches
# Rough per-run start-up (interpreter, framework import, build, compile) and ml-100k
# depth-1 step time on this machine, seconds and milliseconds.
START_S = {"keras-jax": 12.0, "keras-tf": 15.0, "keras-torch": 12.0, "jax": 6.0, "torch": 5.0}
STEP_MS = {"keras-jax": 1.4, "keras-tf": 8.8, "keras-torch": 10.2, "jax": 0.9, "torch": 2.3}
DENSE_BYTES_PER_S = 5e9  # a dense Adagrad step streams every table row about 5 times
CAP = {"epochs": 3, "steps": 100, "eval_rows": 10_000}


@dataclass(frozen=True)
class Sweep:
    """One `bench run` over the implementations on one workload."""

    part: str
    dataset: str
    ratings: int
    users: int
    movies: int
    seeds: str
    flags: tuple[str, ...] = field(default=())  # epochs, caps, depth...

    def argv(self, impls: list[str], results: Path, embeddings: Path | None) -> list[str]:
        argv = ["run", "--impl", ",".join(impls), "--dataset", self.dataset, "--seed", self.seeds,
                *self.flags, "--results", str(results), "--resume", "--no-progress"]
        if embeddings is not None and self.part == "d":
            argv += ["--save-embeddings", str(embeddings)]
        return argv

    def estimate_s(self, impls: list[str]) -> float:
        """Seconds this sweep should take (a rough model, see the module docstring)."""
        epochs = int(_flag(self.flags, "--epochs") or 1)
        cap = _flag(self.flags, "--steps-per-epoch")
        steps = min(int(cap) if cap else 10**12, -(-self.ratings * 4 // 5 // 1000))
        eval_rows = min(int(_flag(self.flags, "--eval-rows") or 10**12), self.ratings // 5)
        table_s = (self.users + self.movies) * 32 * 4 * 5 / DENSE_BYTES_PER_S
        per_seed = 0.0
        for impl in impls:
            base = impl.replace("-sparse", "")
            step_s = STEP_MS.get(base, 3.0) / 1e3 + (0 if impl in SPARSE else table_s)
            per_seed += (START_S.get(base, 10.0) + 1.5e-6 * self.ratings + epochs * steps * step_s
                         + 4e-9 * eval_rows * self.movies + 3.0)
        return per_seed * len(self.seeds.split(","))


def _flag(flags: tuple[str, ...], name: str) -> str | None:
    return flags[flags.index(name) + 1] if name in flags else None


def _synthetic(ratings: int, users: int, movies: int) -> str:
    return f"synthetic:users={users},movies={movies},ratings={ratings}"


def plan(parts: str) -> list[Sweep]:
    """The sweeps of the chosen parts, in order."""
    capped = ("--depth", "1", "--epochs", str(CAP["epochs"]),
              "--steps-per-epoch", str(CAP["steps"]), "--eval-rows", str(CAP["eval_rows"]),
              "--validation-freq", str(CAP["epochs"]), "--retrieve-seconds", "0.2")
    grid: list[tuple[str, int, int, int]] = [
        ("a", r, r // 100, r // 100) for r in (100_000, 1_000_000, 10_000_000)]
    grid += [("b", 1_000_000, u, 10_000) for u in (1_000, 100_000, 1_000_000)]
    sweeps = []
    for part, r, u, m in grid:
        if part in parts:
            seeds = "0" if r >= 10_000_000 or u >= 1_000_000 else "0,1"
            sweeps.append(Sweep(part, _synthetic(r, u, m), r, u, m, seeds, capped))
    if "c" in parts:
        sweeps.append(Sweep("c", "ml-1m", 1_000_209, 6_040, 3_706, "0,1,2",
                            ("--depth", "1", "--epochs", "10", "--validation-freq", "5")))
    if "d" in parts:
        r, m = 10_000_000, 100_000
        sweeps.append(Sweep("d", _synthetic(r, m, m), r, m, m, "0", (
            "--depth", "1", "--epochs", "3", "--eval-rows", str(CAP["eval_rows"]),
            "--validation-freq", "3", "--retrieve-seconds", "0.2")))
    return sweeps


def _impls(wanted: str | None, part: str) -> tuple[list[str], list[str]]:
    """(known implementations of the part, the wanted ones missing from the registry).

    `module:Class` names pass as they are (`bench run` checks them).
    """
    default = {"c": registry.PRIMARY, "d": ("jax-sparse",)}.get(part, IMPLS)
    names = wanted.split(",") if wanted else list(default)
    known = [n for n in names if n in registry.REGISTRY or registry.is_target(n)]
    return known, [n for n in names if n not in known]


def _print_plan(args: argparse.Namespace, parts: list[str]) -> list[list[str]]:
    """Every sweep's `bench run` arguments, printed with its estimated duration."""
    embeddings = args.embeddings if "d" in parts else None
    jobs, total = [], 0.0
    for sweep in plan(",".join(parts)):
        impls, missing = _impls(args.impl, sweep.part)
        if missing:
            print(f"({sweep.part}) not in the registry, left out: {', '.join(missing)}")
        seconds = sweep.estimate_s(impls)
        total += seconds
        jobs.append(sweep.argv(impls, args.results, embeddings))
        print(f"({sweep.part}) ~{seconds / 60:4.1f} min  {command_text(jobs[-1])}")
    print(f"{len(jobs)} sweep(s), estimated {total / 60:.0f} min on this machine "
          "(a rough model; cache builds of new workloads come on top)")
    return jobs


def main(argv: list[str] | None = None) -> int:
    """Print the plan; unless --dry-run, run it (exit 1 when a sweep failed, 130 interrupted)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", default=",".join(PARTS), help="parts to run: a,b,c,d (all)")
    p.add_argument("--impl", default=None, help="implementations (default: see above)")
    p.add_argument("--results", type=Path, default=Path("results") / "scaling",
                   help="records go to RESULTS/records.jsonl (results/scaling)")
    p.add_argument("--embeddings", type=Path, default=Path("results") / "local" / "embeddings",
                   help="--save-embeddings folder of part d (results/local/embeddings)")
    p.add_argument("--logs", type=Path, default=Path("results") / "local" / "scaling-logs",
                   help="each sweep's full output (results/local/scaling-logs)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.part.split(",") if x.strip()]
    if not parts or any(x not in PARTS for x in parts):
        p.error(f"--part: a comma list of {', '.join(PARTS)}, got {args.part!r}")
    jobs = _print_plan(args, parts)
    if args.dry_run:
        return 0

    def sweep(i: int, job: list[str]) -> bool:
        record_command(args.results, command_text(job))
        return run_bench(job, args.logs / f"sweep-{i:02d}.log")[0] == 0

    return run_in_order([functools.partial(sweep, i, job) for i, job in enumerate(jobs)],
                        "sweep(s) ok", args.results)

if __name__ == "__main__":
    sys.exit(main())
