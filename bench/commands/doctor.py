"""`python -m bench doctor`: per framework, its version, the devices it sees, and whether
`--device gpu` would work here (and if not, what to install).

    python -m bench doctor [--framework all|jax,tensorflow,torch,faiss] [--json]

Each framework is imported in its own child process (bench/doctor/), Keras
on that backend in the same child; the GPU verdict is the very check a
`--device gpu` worker makes first. The GPUs and the driver come from
nvidia-smi, when there is one.

Exit codes: 0 when every installed framework could be inspected (a missing GPU
or an uninstalled framework is an answer, not an error), 1 when one failed to
import or its child crashed or hung past --timeout (one `error:` line each on
stderr), 2 bad input, 130 interrupted (the children are killed).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from bench.commands.list import format_table
from bench.doctor.probes import Row
from bench.doctor.runner import FRAMEWORKS, Report, inspect
from bench.errors import UsageError
from bench.spec import Bound

_TIMEOUT = Bound("--timeout", 0, 86400, "a day", open_low=True)
_COLUMNS = ("framework", "version", "build", "devices", "--device gpu")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `doctor`."""
    p = subparsers.add_parser(
        "doctor", help="what each framework sees here: version, devices, GPU readiness",
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--framework", default="all",
                   help=f"all, or a comma list of {', '.join(FRAMEWORKS)} (all)")
    p.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per child (300)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=doctor_command)
    return p


def parse_frameworks(text: str) -> list[str]:
    """`all` or a comma list of FRAMEWORKS keys, in the order given, once each."""
    names = list(FRAMEWORKS) if text.strip() == "all" else [
        n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown or not names:
        raise UsageError(f"--framework: unknown {', '.join(map(repr, unknown)) or repr(text)}; "
                         f"choose from {', '.join(FRAMEWORKS)} or all")
    return list(dict.fromkeys(names))


def doctor_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Inspect, print the table (or JSON), one error line per failed framework; 0 or 1."""
    out = out or sys.stdout
    names = parse_frameworks(args.framework)
    _TIMEOUT.check(args.timeout)
    from tqdm import tqdm  # only once the flags are good

    with tqdm(total=len(names), desc="doctor", unit="framework", file=sys.stderr,
              disable=args.no_progress, leave=False) as bar:
        report = inspect(names, args.timeout, progress=lambda name: bar.update(1))
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_text(report), file=out)
    for row in report.failed():
        print(f"error: {row.name}: {row.error}", file=sys.stderr)
    return 1 if report.failed() else 0


def format_text(report: Report) -> str:
    """The machine, the table, what `--device gpu` needs, and the verdict."""
    table = [{"framework": r.name, "version": r.version or "-", "build": r.build or "-",
              "devices": ", ".join(r.devices) or "-", "--device gpu": _verdict(r)}
             for r in report.rows]
    lines = [*_machine_lines(report.machine), "", format_table(table, _COLUMNS)]
    needs: dict[str, list[str]] = {}  # a fix -> the rows it serves (Keras shares its backend's)
    for r in report.rows:
        if r.fix and not r.error:
            needs.setdefault(r.fix, []).append(r.name)
    if needs:
        lines += ["", "What --device gpu needs:",
                  *(f"  {', '.join(names)}: {fix}" for fix, names in needs.items())]
    ready = report.gpu_ready()
    lines += ["", f"--device gpu would work here for: {', '.join(ready) or 'none of them'}"]
    if not report.machine["gpus"]:
        lines.append("(bench run refuses --device gpu before any worker starts while "
                     "nvidia-smi lists no GPU; --device auto then runs on the CPU)")
    return "\n".join(lines)


def _verdict(row: Row) -> str:
    if row.error:
        return "error (see below)"
    if not row.installed:
        return "not installed"
    if row.gpu is None:
        return row.gpu_detail or "n/a"
    return f"yes: {row.gpu_detail}" if row.gpu else "no"


def _machine_lines(machine: dict[str, Any]) -> list[str]:
    lines = [f"CPU: {machine['cpu_model']}, {machine['cpu_count']} logical cores"]
    if not machine["gpus"]:
        why = "nvidia-smi lists none" if machine["nvidia_smi"] else "no nvidia-smi here"
        return [*lines, f"GPU: none ({why})"]
    for i, gpu in enumerate(machine["gpus"]):
        memory = f", {gpu['memory_mb']:.0f} MiB" if gpu["memory_mb"] else ""
        lines.append(f"GPU {i}: {gpu['name']}{memory}, driver {gpu['driver']}, "
                     f"CUDA {machine['cuda_version'] or '?'} (nvidia-smi)")
    return lines
