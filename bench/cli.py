"""The `bench` command line: one argparse parser, one sub-command per module.

Each sub-command lives in its own module exposing
`add_parser(subparsers) -> argparse.ArgumentParser`; the parser's `func`
default is called with the parsed namespace and returns an exit code. Modules
are imported here, so they must not import any ML framework at module level.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from bench.commands import data, parity, report, retrieval, run
from bench.commands import list as list_command  # `list` would shadow the builtin
from bench.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError

# Every sub-command module, in the order `--help` lists them.
_COMMANDS: tuple[ModuleType, ...] = (data, list_command, run, report, retrieval, parity)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Train, time and compare one deep retrieval recommender across frameworks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # a command that records its own interruption returns 130 itself
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
