"""`python -m bench list`: every implementation, its framework, and whether it can run here.

Reads the registry only: installation is found with importlib.util.find_spec
(ImplEntry.missing), so listing never imports a framework.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from bench import registry

_COLUMNS = ("name", "framework", "installed", "install with", "description")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `list`."""
    p = subparsers.add_parser(
        "list",
        help="list implementations and whether their framework is installed here",
        description="List every implementation: its framework, whether that framework is "
        "installed here (checked without importing it) and the pip extra that installs it.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per implementation")
    p.set_defaults(func=list_command)
    return p


def rows() -> list[dict[str, str]]:
    """One row per registry entry, primary implementations first (registry order)."""
    out = []
    for entry in registry.REGISTRY.values():
        missing = entry.missing()
        out.append({
            "name": entry.name,
            "framework": entry.framework,
            "primary": "yes" if entry.name in registry.PRIMARY else "variant",
            "installed": "yes" if not missing else f"no (missing {', '.join(missing)})",
            "install with": f"pip install -e '.[{entry.extra}]'",
            "description": entry.description,
        })
    return out


def format_table(table: list[dict[str, str]], columns: tuple[str, ...] = _COLUMNS) -> str:
    """A plain aligned text table of the given columns."""
    widths = {c: max(len(c), *(len(r[c]) for r in table)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in table]
    return "\n".join(lines)


def list_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the table (or JSON lines); exit code 0."""
    out = out or sys.stdout
    table = rows()
    if args.json:
        for row in table:
            print(json.dumps(row), file=out)
    else:
        print(format_table(table), file=out)
        print(f"\nprimary (compared by `run --impl all`): {', '.join(registry.PRIMARY)}", file=out)
    return 0
