"""The `bench` command line: one argparse parser, one sub-command per module.

Each sub-command lives in its own module exposing
`add_parser(subparsers) -> argparse.ArgumentParser`; the parser's `func`
default is called with the parsed namespace and returns an exit code. Modules
are imported here, so they must not import any ML framework at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import shlex
import signal
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from bench.commands import data, doctor, parity, report, retrieval, run
from bench.commands import list as list_command  # `list` would shadow the builtin
from bench.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from bench.process import interruptible

# Every sub-command module, in the order `--help` lists them.
_COMMANDS: tuple[ModuleType, ...] = (data, list_command, run, report, retrieval, parity, doctor)
EXIT_CRASH = 1  # an unexpected exception: one line on stderr, the traceback in a log file


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, as every other bad input.

    argparse prints the whole usage block before its error; a user who typed
    `--device tpu` needs the one line, and `--help` has the rest.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m bench",
        description="Train, time and compare one deep retrieval recommender across frameworks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how a hang is diagnosed.
    # The process's own stderr (fd 2): sys.stderr may be a capture without a file number.
    with contextlib.suppress(AttributeError, OSError, ValueError):
        if sys.__stderr__ is not None:  # None: started without a stderr at all
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with interruptible():  # Ctrl-C and SIGTERM raise KeyboardInterrupt in every command
            return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # a command that records its own interruption returns 130 itself
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last resort: no traceback reaches the user
        message = " ".join(str(exc).split())  # one line, whatever the exception says
        where = _log_traceback(sys.argv[1:] if argv is None else list(argv))
        print(f"error: {type(exc).__name__}: {message} (traceback in {where})", file=sys.stderr)
        return EXIT_CRASH


def _log_traceback(argv: list[str]) -> str:
    """Write the exception being handled to a new log file; its path (or why there is none).

    The user's cache folder (~/.cache/deeprec-bench/logs, or $XDG_CACHE_HOME's),
    else the temp folder: the results folder may be what failed.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for folder in (Path(base) / "deeprec-bench" / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix="bench-error-", suffix=".log", dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(f"python -m bench {shlex.join(argv)}\n{traceback.format_exc()}")
            return path
        except OSError:
            continue
    return "no log: no writable folder"
