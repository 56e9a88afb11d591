"""What the CLI-driven studies (scaling, devices) share: their commands, run in order.

Each study runs `python -m bench ...` commands as child processes (bench/process.py),
appends each to `<results>/commands.txt` before it runs (the report quotes that file),
and on Ctrl-C stops after the command in flight has recorded its runs as interrupted.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.errors import EXIT_INTERRUPTED
from bench.process import WorkerProcess, interruptible, worker_env
from bench.report.scaling import COMMANDS_FILE

COMMAND_TIMEOUT_S = 7 * 86400  # `bench run` and `bench parity` time out their own workers


def command_text(argv: Sequence[str]) -> str:
    """The command line a reader can paste: `python -m bench <argv>`, quoted."""
    return shlex.join(["python", "-m", "bench", *argv])


def record_command(results: Path, command: str) -> None:
    """Append `command` to <results>/commands.txt unless it is there already."""
    path = results / COMMANDS_FILE
    results.mkdir(parents=True, exist_ok=True)
    known = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    if command not in known:
        with open(path, "a", encoding="utf-8") as f:
            f.write(command + "\n")


def run_bench(argv: Sequence[str], log: Path) -> tuple[int, str]:
    """`python -m bench <argv>` as a child, its output to `log`: (exit code, printed tail)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = WorkerProcess("bench", list(argv), worker_env(), log)
    proc.watch(COMMAND_TIMEOUT_S, lambda event: None)
    tail = proc.log_tail(4000)
    print(tail, flush=True)
    return (proc.returncode if proc.returncode is not None else 1), tail


def run_in_order(steps: Sequence[Callable[[], bool]], what: str, results: Path) -> int:
    """Each step in turn (True: it ended as it should); 0, 1 when one failed, 130 on Ctrl-C."""
    failed = 0
    try:
        with interruptible():  # Ctrl-C: the command in flight records its runs as interrupted
            for step in steps:
                failed += not step()
    except KeyboardInterrupt:
        print("interrupted: run the same command again to go on (--resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"done: {len(steps) - failed} of {len(steps)} {what}; report: "
          f"python -m bench report --results {shlex.quote(str(results))}")
    return 1 if failed else 0
