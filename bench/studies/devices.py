"""The data-parallel study: each framework trained over N devices against itself on one.

    python -m bench.studies.devices --dry-run           # the plan and its estimated duration
    python -m bench.studies.devices                     # the whole study, into results/devices
    python -m bench.studies.devices --quick             # the same path on a tiny synthetic set
    python -m bench report --results results/devices    # its report: results/devices/README.md

Everything goes through the real CLI, one child process per command (bench/process.py),
each appended to `<results>/commands.txt` before it runs (the report quotes it):

- `bench run` (depth 1, 3 epochs, validation after the last only, 0.2 s of timed
  retrieval per batch size, `--resume`: an interrupted study goes on where it stopped) for
  the five primary implementations on one device at batch 1000, the baseline of both
  scalings; then for each N in 2, 4 the data-parallel ones (bench/registry.py
  DATA_PARALLEL) on N devices at batch 1000 (strong scaling: the same global batch) and
  N x 1000 (weak scaling: the same per-device batch), one command per N;
- for each N, the same command for each primary implementation with no data-parallel
  path: the CLI refuses it (exit 2), and its one-line reason follows the command in
  commands.txt as a comment (a refusal is a result, not a crash);
- `bench parity --devices 2,4` for the data-parallel ones: from the shared initial
  weights, 20 steps on N devices against one (`devices_parity.json`).

On a CPU the devices are simulated (bench/registry.py devices_env): the step times measure
each mechanism's overhead, not a speed-up. The duration estimate is a rough model of this
2-core machine (start-up per run from bench/studies/scaling.py, step times scaled by the
global batch and, over N simulated devices sharing the cores, by N x DP_OVERHEAD). Three
epochs (the first compiles, two are steady) and seeds 0 and 1 keep it near 25 minutes:
keras-tf over four simulated devices alone takes about 20 s an epoch here.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import registry
from bench.studies.commands import command_text, record_command, run_bench, run_in_order
from bench.studies.scaling import START_S, STEP_MS

EXIT_REFUSED = 2  # the CLI's exit on bad input: how a refusal of --devices ends
# A step over N simulated devices on this 2-core machine, in one device's steps of the same
# global batch, per N: measured once each under other load (keras-tf N=4 at batch 1000:
# 266 ms; torch N=4 at 1000: 27 ms; jax N=4 at 4000: 29 ms), so rough.
DP_OVERHEAD = {"keras-tf": 7.5, "torch": 3.0, "jax": 2.0, "keras-jax": 2.0}
DDP_RANK_START_S = 5.0  # torch: each helper rank's process and its share of the group set-up
RUN_OVERHEAD_S = 8.0  # numpy evaluation, timed retrieval, the CLI's own start


@dataclass(frozen=True)
class Settings:
    """What one study trains: the dataset, batch and device counts, epochs and seeds."""

    dataset: str
    train_rows: int
    batch: int  # the one-device batch: strong scaling's global and weak's per-device batch
    counts: tuple[int, ...]  # device counts above 1
    epochs: int
    seeds: str
    parity_steps: int


FULL = Settings("ml-100k", 80_000, 1000, (2, 4), epochs=3, seeds="0,1", parity_steps=20)
QUICK = Settings("synthetic:users=100,movies=150,ratings=6000,seed=0", 4_800, 200, (2,),
                 epochs=2, seeds="0", parity_steps=3)


@dataclass(frozen=True)
class Command:
    """One `python -m bench` command of the study, and what it should end with."""

    argv: tuple[str, ...]
    estimate_s: float
    refused: bool = False  # the CLI must refuse it (exit 2)

    def text(self) -> str:
        return command_text(list(self.argv))


def _run_s(impl: str, n: int, batch: int, s: Settings) -> float:
    """Rough seconds of one `bench run` (see the module docstring)."""
    slower = 1.0 if n == 1 else n * DP_OVERHEAD.get(impl, 3.0)
    step_ms = STEP_MS.get(impl, 5.0) * batch / 1000 * slower
    steps = -(-s.train_rows // batch)
    start = START_S.get(impl, 12.0) + (DDP_RANK_START_S * (n - 1) if impl == "torch" else 0.0)
    return start + RUN_OVERHEAD_S + s.epochs * steps * step_ms / 1e3


def plan(s: Settings, impls: list[str], results: Path, cache_dir: Path | None) -> list[Command]:
    """Every command of the study, in order."""
    common = ["--depth", "1", "--epochs", str(s.epochs), "--validation-freq", str(s.epochs),
              "--seed", s.seeds, "--retrieve-seconds", "0.2", "--dataset", s.dataset,
              "--results", str(results), "--resume", "--no-progress"]
    common += ["--cache-dir", str(cache_dir)] if cache_dir else []
    seeds = len(s.seeds.split(","))
    parallel = [i for i in impls if i in registry.DATA_PARALLEL]
    refusing = [i for i in impls if i not in registry.DATA_PARALLEL]
    out = [Command(("run", "--impl", ",".join(impls), "--devices", "1", "--batch-size",
                    str(s.batch), *common),
                   seeds * sum(_run_s(i, 1, s.batch, s) for i in impls))]
    for n in s.counts:
        batches = (s.batch, n * s.batch)
        if parallel:
            out.append(Command(
                ("run", "--impl", ",".join(parallel), "--devices", str(n), "--batch-size",
                 ",".join(map(str, batches)), *common),
                seeds * sum(_run_s(i, n, b, s) for i in parallel for b in batches)))
        out += [Command(("run", "--impl", impl, "--devices", str(n), "--batch-size",
                         str(s.batch), *common), 2.0, refused=True) for impl in refusing]
    if parallel:
        argv = ["parity", "--impl", ",".join(parallel), "--devices",
                ",".join(map(str, s.counts)), "--depth", "1", "--steps", str(s.parity_steps),
                "--batch-size", str(s.batch), "--dataset", s.dataset, "--results", str(results)]
        argv += ["--cache-dir", str(cache_dir)] if cache_dir else []
        # A worker: start-up, weights, build, compile, 20 steps (~27 s each here, measured).
        worker_s = sum(START_S.get(i, 12.0) + 12.0 for i in parallel) * (1 + len(s.counts))
        out.append(Command(tuple(argv), worker_s / 2))  # two workers at once
    return out


def _execute(command: Command, results: Path, log: Path) -> bool:
    """Run one command as a child; True when it ended as it should (ok, or refused)."""
    record_command(results, command.text())
    returncode, tail = run_bench(command.argv, log)
    if not command.refused:
        return returncode == 0
    reason = tail.splitlines()[-1] if tail else "no output"
    impl, n = (command.argv[command.argv.index(flag) + 1] for flag in ("--impl", "--devices"))
    if returncode != EXIT_REFUSED or f"--devices {n}: {impl}:" not in reason:
        print(f"expected {impl}'s refusal of --devices {n} (exit {EXIT_REFUSED}), got exit "
              f"{returncode}: {reason}")
        return False
    record_command(results, f"# refused (exit {EXIT_REFUSED}): {reason}")
    return True


def main(argv: list[str] | None = None) -> int:
    """Print the plan; unless --dry-run, run it (exit 1 when a command failed, 130 interrupted)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", default=",".join(registry.PRIMARY),
                   help="implementations (default: the five primary)")
    p.add_argument("--results", type=Path, default=Path("results") / "devices",
                   help="records, devices_parity.json and commands.txt (results/devices)")
    p.add_argument("--logs", type=Path, default=Path("results") / "local" / "devices-logs",
                   help="each command's full output (results/local/devices-logs)")
    p.add_argument("--cache-dir", type=Path, default=None, help="dataset cache directory")
    p.add_argument("--quick", action="store_true",
                   help=f"a tiny synthetic dataset ({QUICK.dataset}), N = 2 only, one seed")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = p.parse_args(argv)
    impls = [name.strip() for name in args.impl.split(",") if name.strip()]
    unknown = [name for name in impls if name not in registry.REGISTRY]
    if not impls or unknown:
        p.error(f"--impl: registry names, got {args.impl!r}")
    commands = plan(QUICK if args.quick else FULL, impls, args.results, args.cache_dir)
    for c in commands:
        print(f"~{c.estimate_s / 60:4.1f} min  {c.text()}" + ("  (to be refused)" * c.refused))
    print(f"{len(commands)} command(s), estimated {sum(c.estimate_s for c in commands) / 60:.0f} "
          "min on this machine (a rough model)")
    if args.dry_run:
        return 0
    logs = [args.logs / f"command-{i:02d}.log" for i in range(len(commands))]
    return run_in_order([functools.partial(_execute, c, args.results, log)
                         for c, log in zip(commands, logs, strict=True)],
                        "command(s) as expected", args.results)

if __name__ == "__main__":
    sys.exit(main())
