"""The readable table `python -m bench run` ends with (one row per run), and its notes.

compile_s is measured where the implementation compiles ahead of time, else the
first epoch minus the median steady one (bench/run/phases.py, COMPILE_S_METHOD),
a difference: `check_warnings` says so when it is negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.record import RunRecord

MAX_OVERHEAD_RATIO = 1.05  # harness epoch time vs the impl's own loop time (issue 4)
MAX_ACCURACY_GAP = 1e-3  # impl metric vs numpy on the same embeddings


def _num(digits: int) -> Callable[[Any], str]:
    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    return fmt


# (header, value of a record, formatter)
COLUMNS: tuple[tuple[str, Callable[[RunRecord], Any], Callable[[Any], str]], ...] = (
    ("impl", lambda r: r.impl, str),
    ("layers", lambda r: ",".join(map(str, r.spec.get("layer_sizes", []))), str),
    ("seed", lambda r: r.spec.get("seed"), str),
    ("rep", lambda r: r.repeat, str),
    ("status", lambda r: r.status, str),
    ("top100 impl", lambda r: r.figures.get("top100_accuracy_impl"), _num(4)),
    ("top100 numpy", lambda r: r.figures.get("top100_accuracy_numpy"), _num(4)),
    ("compile_s", lambda r: r.figures.get("compile_s"), _num(2)),
    ("epoch_s med", lambda r: r.figures.get("train_epoch_s"), _num(3)),
    ("step_ms", lambda r: r.figures.get("train_step_ms"), _num(3)),
    ("overhead", lambda r: r.figures.get("harness_overhead_ratio"), _num(3)),
    ("retr p50 b100 ms", lambda r: r.figures.get("retrieve_p50_ms_b100"), _num(3)),
    ("rss_mb", lambda r: r.figures.get("peak_rss_mb"), _num(0)),
    ("wall_s", lambda r: r.duration_s, _num(1)),
)


def format_table(records: Sequence[RunRecord]) -> str:
    """A plain-text table, columns aligned, numbers right-aligned."""
    header = [name for name, _, _ in COLUMNS]
    rows = [[fmt(get(r)) for _, get, fmt in COLUMNS] for r in records]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(header)]
    text_columns = {0, 1, 4}  # left-aligned

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def headline(error: str) -> str:
    """One line of an error: a traceback's last line, else the first (the parent's reason)."""
    lines = error.strip().splitlines() or [""]
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def failures(records: Sequence[RunRecord]) -> str:
    """One line per run that did not end ok, for the end of the output."""
    lines = []
    for r in records:
        if r.status != "ok" and r.error:
            lines.append(f"{r.impl} seed {r.spec.get('seed')}: {r.status}: {headline(r.error)}")
    return "\n".join(lines)


def check_warnings(records: Sequence[RunRecord]) -> str:
    """One line per ok run whose harness overhead, accuracy cross-check or compile_s is odd."""
    lines = []
    for r in records:
        f, who = r.figures, f"{r.impl} seed {r.spec.get('seed')} rep {r.repeat}"
        compile_s = f.get("compile_s")
        if compile_s is not None and compile_s < 0:  # only the difference can be negative
            lines.append(f"note: {who}: compile_s {compile_s:.2f} s is negative: it is the "
                         "first epoch minus the median steady epoch, a difference, not a "
                         "measurement (steady epochs slowed by other load?)")
        ratio = f.get("harness_overhead_ratio")
        if ratio is not None and ratio > MAX_OVERHEAD_RATIO:
            lines.append(f"warning: {who}: harness epoch time is {ratio:.3f}x the impl's own "
                         f"loop time (more than {MAX_OVERHEAD_RATIO:.2f}x)")
        gap = f.get("top100_accuracy_abs_diff")
        if gap is not None and gap > MAX_ACCURACY_GAP:
            lines.append(f"warning: {who}: top-100 accuracy by the impl "
                         f"{f.get('top100_accuracy_impl'):.4f} vs numpy "
                         f"{f.get('top100_accuracy_numpy'):.4f}")
    return "\n".join(lines)
