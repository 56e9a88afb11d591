"""The results store: an append-only JSON-lines file that never loses a record.

`<dir>/records.jsonl` holds one record (bench/record.py) per line. Appends are
safe under any number of concurrent harness processes: each record is encoded
in full first, then written under an exclusive `fcntl.flock` on a file opened
with O_APPEND, and fsync'ed before the lock is released. A writer killed
mid-write can leave a torn last line; the next writer sees the file does not
end in a newline and starts on a fresh line, so the torn fragment never
swallows a good record. `ResultsStore.scan` is the one reader (for `--resume`,
the report and the retrieval report): it keeps what a kind's check accepts and
counts every other line with its reason, so a foreign or damaged line is left
out, never a crash.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench.errors import UsageError
from bench.record import STATUS_OK, RunRecord, problem

log = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"


def check_results_dir(path: Path, files: tuple[str, ...] = (RECORDS_FILE,)) -> None:
    """UsageError unless the store at `path` is appendable (see `check_writable_dir`)."""
    check_writable_dir(path, "results dir", files)


def check_writable_dir(path: Path, what: str, files: tuple[str, ...] = ()) -> None:
    """UsageError unless `path` is, or can be created as, a folder this process writes into,
    and each of `files` in it, where present, a writable regular file.

    The one check of an output folder (run, parity and retrieval results, report
    --out). It creates nothing: run it before any side effect, so that no work
    is lost to a store that cannot be written (a dangling or looping symlink, a
    file, a read-only folder, a name too long, records.jsonl a folder).
    """
    try:
        problem = _dir_problem(path, files)
    except OSError as exc:  # ENAMETOOLONG, EACCES on a parent...
        problem = exc.strerror or str(exc)
    if problem:
        raise UsageError(f"{what} {path}: {problem}")


def _dir_problem(path: Path, files: tuple[str, ...]) -> str | None:
    if path.is_symlink() and not path.exists():
        return f"a symlink to {os.readlink(path)} that leads nowhere (dangling or a loop)"
    if not path.exists():
        return _create_problem(path)
    if not path.is_dir():
        return "is not a directory"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return "is not writable (or not readable)"
    for name in files:
        file = path / name
        if file.is_symlink() and not file.exists():
            return f"{name} is a symlink that leads nowhere"
        if file.exists() and not file.is_file():
            return f"{name} in it is not a regular file"
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            return f"{name} in it is not writable (or not readable)"
    return None


def _create_problem(path: Path) -> str | None:
    """Why `path` (missing) cannot be created, or None."""
    name_max = os.pathconf("/", "PC_NAME_MAX")
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            return f"a name of {len(os.fsencode(part))} bytes (the limit is {name_max})"
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink():
            return f"{parent} is a symlink that leads nowhere"
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not a directory, or not writable"
    return None


@contextmanager
def _locked_append_fd(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def to_json_safe(value: Any) -> Any:
    """`value` with numpy scalars/arrays made plain and NaN/inf made None.

    A NaN loss must not make the record unstorable (strict JSON has no NaN).
    """
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A new file that replaces `path` only once the block completes.

    Readers see the old file or the whole new one; an exception or a crash
    leaves `path` as it was (and no temporary file behind, but for a crash).

    Args:
        path: the file to (re)write; its folder must exist.
        mode: "w" (text) or "wb" (bytes).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would make it, not mkstemp's 0600
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


Check = Callable[[dict[str, Any]], str | None]  # why a record is not of a kind, or None


@dataclass
class Scan:
    """What one read of the store understood, and what it left out and why."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def explain(self) -> str:
        """One line: "left out 2 line(s): 1 not JSON; 1 status 'x' (unknown)"."""
        reasons = "; ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return f"left out {sum(self.skipped.values())} line(s): {reasons}"


class ResultsStore:
    """Records of every run in one directory.

    Args:
        root: the results directory (created on the first append).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.path = self.root / RECORDS_FILE

    def append(self, record: RunRecord | dict[str, Any]) -> None:
        """Append one record atomically (see the module docstring)."""
        data = record.to_dict() if isinstance(record, RunRecord) else record
        line = json.dumps(to_json_safe(data), sort_keys=True, allow_nan=False, default=str) + "\n"
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked_append_fd(self.path) as fd:
            prefix = b"" if _ends_with_newline(self.path) else b"\n"  # isolate a torn line
            _write_all(fd, prefix + line.encode())
            os.fsync(fd)

    def scan(self, check: Check | None = None) -> Scan:
        """The one reader: every record `check` accepts, and why each other line was skipped.

        Args:
            check: a kind's test (bench.record.problem for training runs,
                bench.retrieval.records.problem for retrieval); None keeps every
                whole JSON object that has a run_id.
        """
        out = Scan()
        if not self.path.is_file():
            return out
        with open(self.path, "rb") as f:
            for raw in f:
                why, obj = _parse(raw)
                if why is None and check is not None:
                    why = check(obj)
                if why is None:
                    out.records.append(obj)
                elif raw.strip():
                    out.skipped[why] += 1
        return out

    def iter_dicts(self) -> Iterator[dict[str, Any]]:
        """Every whole record as a dict; torn or foreign lines are skipped (logged)."""
        found = self.scan()
        if found.skipped:
            log.warning("%s: %s", self.path, found.explain())
        yield from found.records

    def records(self) -> list[RunRecord]:
        """Every training record this code can read, in append order (see `scan`)."""
        return [RunRecord.from_dict(d) for d in self.scan(problem).records]

    def has_run(self, run_id: str) -> bool:
        """Whether a record for `run_id` is already stored."""
        return any(d.get("run_id") == run_id for d in self.scan().records)

    def ok_records(self) -> list[RunRecord]:
        """Every run recorded as ok (what `--resume` skips).

        Lines that are not readable training records are left out and logged
        with their reasons, as the report lists them.
        """
        found = self.scan(problem)
        if found.skipped:
            log.warning("%s: %s", self.path, found.explain())
        return [RunRecord.from_dict(d) for d in found.records if d["status"] == STATUS_OK]


def _parse(raw: bytes) -> tuple[str | None, dict[str, Any]]:
    """(None, the record) for a whole JSON object with a run_id, else (why not, {})."""
    if not raw.endswith(b"\n"):
        return "torn line (no newline: a writer was cut off)", {}
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json allows
        return "not JSON", {}
    if not isinstance(obj, dict) or "run_id" not in obj:
        return "not a record (no run_id)", {}
    return None, obj
