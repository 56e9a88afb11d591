"""Run every row of the bad-input table against a tree and count what held and what broke.

    python -m tests.faults.tally --tree /work/before      # the code before issue 12
    python -m tests.faults.tally --tree . -v               # this checkout, each row's outcome

Each row runs as `python -m bench ...` with cwd and PYTHONPATH the tree, in a
fresh sandbox (tests/faults/cases.py), killed with all its workers after
--timeout seconds (a row the tree accepted and started working on). Not a
test: a report of before and after counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.faults.cases import Sandbox, all_cases, check, env_for, run_subprocess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="checkout to run against")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per row (60)")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per row")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    held = broken = skipped = 0
    for case in all_cases():
        with tempfile.TemporaryDirectory(prefix="tally-") as tmp:
            box = Sandbox(Path(tmp))
            filled = [box.fill(a) for a in case.argv]
            fragment = box.fill(case.fragment)
            if None in filled or fragment is None:
                skipped += 1
                continue
            before = box.snapshot()
            argv = [a for a in filled if a is not None]
            code, stderr = run_subprocess(argv, env_for(case, box), tree, args.timeout)
            problem = check(case, fragment, code, stderr, box.snapshot() ^ before)
        held, broken = held + (problem is None), broken + (problem is not None)
        if args.verbose or problem is not None:
            print(f"{'held  ' if problem is None else 'BROKEN'} {case.id}"
                  + (f"\n         {problem[:300]}" if problem else ""), flush=True)
    print(f"{tree}: {held + broken} case(s) tried, {held} held, {broken} broken"
          + (f", {skipped} skipped (no unwritable folder here)" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
