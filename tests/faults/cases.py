"""The bad-input table: every sub-command, every kind of bad input, one row per case.

A row is (argv, expected exit code, a fragment of the expected one-line
error). A new flag gets its cases by adding rows (or a flag to one of the
class tables below, which generate rows for every command that has it).
Placeholders in argv and env name hostile paths that `Sandbox` makes inside a
fresh temporary folder for each case:

    {results}  a results/out folder that does not exist yet (a good one)
    {cache}    a cache folder that does not exist yet (DEEPREC_CACHE_DIR too)
    {file}     a regular file
    {ro}       a folder this process cannot write (skipped where none exists)
    {long}     a path with a 300-character component
    {dangling} a symlink to nothing; {loop} a symlink to itself
    {recdir}   a folder whose records.jsonl is a folder

Used by tests/faults/test_bad_input.py and tests/faults/tally.py; the checks
(exit code, one line starting with "error:", no traceback, nothing written)
live in `check`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FAKE = "tests.harness.fake_impl:FakeImpl"
DATA = "tests.fixtures:make_dataset"  # 2000 training rows

# A good, quick invocation of each command; a row appends its bad flags (argparse: last wins).
BASE: dict[str, tuple[str, ...]] = {
    "run": ("run", "--impl", FAKE, "--dataset", DATA, "--results", "{results}", "--epochs", "1",
            "--depth", "1", "--batch-size", "500", "--retrieve-seconds", "0.05",
            "--no-progress"),
    "parity": ("parity", "--impl", FAKE, "--reference", FAKE, "--dataset", DATA,
               "--results", "{results}", "--steps", "2", "--batch-size", "500"),
    "retrieval": ("retrieval", "--candidates", "1000", "--dim", "8", "--k", "10", "--batch", "1",
                  "--impl", "numpy", "--repeats", "2", "--min-calls", "1", "--budget", "0.05",
                  "--results", "{results}", "--no-report"),
    "report": ("report", "--results", "results/archive/runs-3-seeds-cache-split", "--out",
               "{results}", "--no-plots"),
    "data": ("data", "info", "--cache-dir", "{cache}"),
    "list": ("list",),
    "doctor": ("doctor", "--framework", "faiss", "--no-progress"),
}


@dataclass(frozen=True)
class Case:
    """One bad input: `BASE[command] + extra` must exit `code` with `fragment` in its line."""

    command: str
    extra: tuple[str, ...]
    fragment: str
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    base: bool = True  # False: `extra` is the whole argv

    @property
    def argv(self) -> tuple[str, ...]:
        return (BASE[self.command] if self.base else ()) + self.extra

    @property
    def id(self) -> str:
        shown = " ".join(self.extra if self.base else self.argv)
        return f"{self.command}: {shown}{' ' + str(self.env) if self.env else ''}"[:90]


def _rows(command: str, rows: list[tuple[str, ...]]) -> list[Case]:
    """(flag, value, ..., fragment) rows of one command."""
    return [Case(command, tuple(r[:-1]), r[-1]) for r in rows]


# Numbers that pass a type check but are not sane, and values of the wrong type.
NUMBERS: dict[str, list[tuple[str, ...]]] = {
    "run": [
        ("--timeout", "nan", "--timeout must be a finite"), ("--timeout", "inf", "finite"),
        ("--timeout", "0", "--timeout must be >"), ("--timeout", "-1", "--timeout"),
        ("--learning-rate", "nan", "--learning-rate"), ("--learning-rate", "0", "--learning-rate"),
        ("--learning-rate", "inf", "--learning-rate"),
        ("--retrieve-seconds", "nan", "--retrieve-seconds"),
        ("--retrieve-seconds", "0", "--retrieve-seconds"),
        ("--epochs", "0", "--epochs must be >= 1"), ("--epochs", "1000000000000", "<= 10000"),
        ("--epochs", "abc", "invalid int value"), ("--validation-freq", "0", "--validation-freq"),
        ("--repeats", "0", "--repeats"), ("--repeats", "1000000000", "--repeats must be <="),
        ("--seed", "-1", "--seed"), ("--seed", "0-1000000000000", "1,000,000,000,001 values"),
        ("--seed", "5-1", "runs backwards"), ("--seed", "4294967296", "--seed must be <="),
        ("--seed", "a", "--seed: expected an integer"),
        ("--seed", "0-9999", "--repeats", "2", "at most 10,000"),
        ("--depth", "0", "--depth must be >= 1"), ("--depth", "45", "need about"),
        ("--depth", "20000", "--depth must be <="), ("--depth", "x", "--depth"),
        ("--layers", "0", "--layers"), ("--layers", "99999999999", "need about"),
        ("--layers", "256,abc", "--layers"), ("--embedding-dim", "0", "--embedding-dim"),
        ("--embedding-dim", "100000000", "need about"),
        ("--embedding-dim", "0-100000000000", "values; at most"),
        ("--batch-size", "0", "--batch-size"), ("--batch-size", "5000", "larger than the training"),
        ("--device", "tpu", "invalid choice"), ("--jit", "maybe", "invalid choice"),
        ("--nope", "unrecognized arguments"),
        ("--steps-per-epoch", "0", "--steps-per-epoch must be >= 1"),
        ("--steps-per-epoch", "-3", "--steps-per-epoch"),
        ("--steps-per-epoch", "x", "invalid int value"),
        ("--steps-per-epoch", "99999999999999999999", "--steps-per-epoch must be <="),
        ("--eval-rows", "0", "--eval-rows must be >= 1"), ("--eval-rows", "1.5", "invalid int"),
        ("--eval-rows", "99999999999999999999", "--eval-rows must be <="),
        ("--save-embeddings", "expected one argument"),
        ("--executor", "slurm", "invalid choice"), ("--ray-auth", "none", "invalid choice"),
        ("--ray-address", "auto", "--ray-address needs --executor ray"),
        ("--runs-per-node", "2", "--runs-per-node needs --executor ray"),
        ("--runs-per-node", "0", "--runs-per-node must be >= 1"),
        ("--runs-per-node", "5000", "--runs-per-node must be <="),
        ("--runs-per-node", "x", "invalid int value"),
        ("--devices", "0", "--devices must be >= 1"), ("--devices", "5000", "--devices must be <="),
        ("--devices", "x", "invalid int value"), ("--devices", "3", "does not split evenly"),
        ("--devices", "2", "no data-parallel path"),
        ("--impl", "keras-torch", "--devices", "2", "Keras offers no distribution on the torch"),
        ("--impl", "jax-scan", "--devices", "2", "jax-scan: no data-parallel path"),
    ],
    "parity": [
        ("--seed", "-5", "--seed must be >= 0"), ("--seed", "4294967296", "--seed"),
        ("--timeout", "nan", "--timeout"), ("--timeout", "inf", "--timeout"),
        ("--steps", "0", "--steps"), ("--steps", "1000000000", "--steps"),
        ("--steps", "50", "data.train has only"), ("--jobs", "0", "--jobs"),
        ("--batch-size", "0", "--batch-size"), ("--depth", "45", "need about"),
        ("--depth", "20000", "--depth"), ("--depth", "0-1000000000000", "values"),
        ("--steps", "x", "invalid int value"),
        ("--devices", "0", "--devices must be >= 1"), ("--devices", "3", "does not split evenly"),
        ("--devices", "2", "no data-parallel path"),
        ("--impl", "keras-torch", "--devices", "2", "Keras offers no distribution on the torch"),
    ],
    "retrieval": [
        ("--seed", "-1", "--seed must be >= 0"), ("--timeout", "nan", "--timeout"),
        ("--budget", "nan", "--budget"), ("--budget", "inf", "--budget"),
        ("--budget", "0", "--budget"), ("--repeats", "0", "--repeats"),
        ("--min-calls", "1000000000", "--min-calls"), ("--min-calls", "0", "--min-calls"),
        ("--candidates", "100000000000", "need about"),
        ("--candidates", "1000-1000000", "--candidates"), ("--k", "2000", "exceeds"),
        ("--dim", "0", "--dim"), ("--impl", "nope", "nope"), ("--repeats", "x", "invalid int"),
        ("--embeddings", "{file}", "cannot be given with --embeddings"),
    ],
    "report": [
        ("--margin", "nan", "--margin"), ("--margin", "0", "--margin"),
        ("--pytest-benchmark", "{file}.missing", "does not exist"),
        ("--retrieval-results", "{results}", "no records.jsonl"),
        ("--export-pytest-benchmark", "{file}/x.json", "cannot write"),
        ("--baseline", "expected one argument"),
    ],
    "doctor": [
        ("--timeout", "nan", "--timeout must be a finite"),
        ("--timeout", "0", "--timeout must be >"), ("--timeout", "x", "invalid float value"),
        ("--framework", "nope", "unknown 'nope'"),
        ("--framework", "jax,tf", "unknown 'tf'; choose from jax, tensorflow, torch, faiss"),
        ("--framework", ",", "--framework"), ("--nope", "unrecognized arguments"),
    ],
}

# Names that are not what they claim: module:attr taken for a dataset or an implementation.
NAMES: dict[str, list[tuple[str, ...]]] = {
    "run": [
        ("--dataset", "movielens:ml100k", "unknown dataset 'movielens:ml100k'"),
        ("--dataset", "os:getcwd", "not a Dataset"), ("--dataset", "ml-10m", "unknown dataset"),
        ("--dataset", "synthetic:users=0", "synthetic"),
        ("--impl", "os:path", "not a RetrievalImpl"), ("--impl", "os:getcwd", "not a Retrieval"),
        ("--impl", "json:dumps", "not a RetrievalImpl"),
        ("--impl", "tests.harness.fake_impl:Nope", "not defined"),
        ("--impl", "no.such.module:X", "not found"), ("--impl", "keras-jaxx", "did you mean"),
    ],
    "parity": [
        ("--dataset", "movielens:ml100k", "unknown dataset"),
        ("--dataset", "os:getcwd", "not a Dataset"), ("--impl", "os:path", "not a RetrievalImpl"),
        ("--reference", "nope", "unknown implementation"),
    ],
}

# Output folders given as a hostile path: (command, flag) x path.
OUTPUTS = [("run", "--results"), ("parity", "--results"), ("retrieval", "--results"),
           ("report", "--out"), ("run", "--save-embeddings")]
HOSTILE = [("{file}", "not a directory"), ("{file}/sub", "not a directory"),
           ("{dangling}", "leads nowhere"), ("{loop}", "leads nowhere"),
           ("{long}", "too long"), ("{ro}", "not writable"), ("{ro}/sub", "not writable")]
APPEND_ONLY = [("run", "--results"), ("retrieval", "--results")]  # they append records.jsonl

OTHER = [
    # --embeddings (trained vectors; N and dim come from the files, so no --candidates/--dim).
    Case("retrieval", ("retrieval", "--embeddings", "{results}/emb", "--impl", "numpy", "--k", "10",
                       "--batch", "1", "--results", "{results}"), "no such folder", base=False),
    Case("retrieval", ("retrieval", "--embeddings", "{file}", "--impl", "numpy", "--k", "10",
                       "--batch", "1", "--results", "{results}"), "not a folder", base=False),
    # An unbuilt cache is not built for a run its batch size refuses anyway.
    Case("run", ("--dataset", "ml-100k", "--cache-dir", "{cache}", "--batch-size", "1000000"),
         "larger than the training set"),
    Case("run", ("--dataset", "synthetic:users=50,movies=300,ratings=3000", "--cache-dir",
                 "{cache}", "--batch-size", "5000"), "larger than the training set"),
    Case("report", ("report", "--results", "{file}"), "not a directory", base=False),
    Case("report", ("report", "--results", "{recdir}", "--out", "{results}"),
         "no records.jsonl", base=False),
    Case("report", ("report", "--results", "{long}"), "too long", base=False),
    Case("data", ("data", "build", "--dataset", "movielens:ml100k", "--cache-dir", "{cache}"),
         "unknown dataset", base=False),
    Case("data", ("--dataset", "nope"), "unknown dataset"),
    Case("data", ("data", "info", "--cache-dir", "{file}"), "--cache-dir", base=False),
    Case("data", ("data", "verify", "--cache-dir", "{long}"), "too long", base=False),
    Case("data", ("data", "bild"), "invalid choice", base=False),
    Case("data", ("data", "build", "--cache-dir", "{ro}/sub"), "not writable", base=False),
    Case("data", ("data", "build", "--cache-dir", "{long}"), "too long", base=False),
    Case("data", ("data", "build", "--cache-dir", "{dangling}"), "leads nowhere", base=False),
    Case("data", ("data", "build", "--force"), "{file}",
         env={"DEEPREC_CACHE_DIR": "{file}"}, base=False),
    Case("list", ("--nope",), "unrecognized arguments"),
    Case("list", ("nope",), "invalid choice", base=False),
    Case("list", (), "required", base=False),
    # The cache folder named by a flag or the variable is a file (bench/data/cache.py).
    Case("run", ("--dataset", "ml-100k", "--cache-dir", "{file}"), "{file}"),
    Case("run", ("--dataset", "ml-100k"), "{file}", env={"DEEPREC_CACHE_DIR": "{file}"}),
    Case("data", ("data", "verify"), "{file}", env={"DEEPREC_CACHE_DIR": "{file}"}, base=False),
    Case("run", ("--dataset", "ml-100k", "--cache-dir", "{long}"), "too long"),
    Case("parity", ("--dataset", "ml-100k", "--cache-dir", "{long}"), "too long"),
]


def all_cases() -> list[Case]:
    """Every row of the table."""
    cases = [c for table in (NUMBERS, NAMES) for cmd, rows in table.items()
             for c in _rows(cmd, rows)]
    cases += [Case(cmd, (flag, path), fragment) for cmd, flag in OUTPUTS
              for path, fragment in HOSTILE]
    cases += [Case(cmd, (flag, "{recdir}"), "records.jsonl") for cmd, flag in APPEND_ONLY]
    return cases + OTHER


class Sandbox:
    """A temporary folder holding every hostile path of the table, made on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = {"results": root / "results", "cache": root / "cache",
                      "file": root / "a-file", "long": root / ("x" * 300),
                      "dangling": root / "dangling", "loop": root / "loop",
                      "recdir": root / "recdir"}
        (root / "a-file").write_text("not a folder\n")
        (root / "dangling").symlink_to(root / "nowhere")
        (root / "loop").symlink_to(root / "loop")
        (root / "recdir" / "records.jsonl").mkdir(parents=True)
        ro = unwritable_dir(root)
        if ro is not None:
            self.paths["ro"] = ro

    def fill(self, text: str) -> str | None:
        """`text` with its placeholders replaced; None when one cannot be made here."""
        for key in ("ro",):
            if "{" + key + "}" in text and key not in self.paths:
                return None
        return text.format(**{k: str(v) for k, v in self.paths.items()})

    def snapshot(self) -> set[str]:
        """Every path under the sandbox (what a refused command must leave as it was)."""
        found = set()
        for folder, dirs, files in os.walk(self.root):
            for name in dirs + files:
                found.add(os.path.join(folder, name))
        return found


def unwritable_dir(root: Path) -> Path | None:
    """A folder this process cannot write: a chmod 555 one, else (as root) a read-only mount."""
    ro = root / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    if not os.access(ro, os.W_OK):
        return ro
    for candidate in (Path("/proc/sys/kernel"), Path("/sys/kernel")):
        if candidate.is_dir() and not os.access(candidate, os.W_OK):
            return candidate
    return None


def check(case: Case, fragment: str, code: int | None, stderr: str,
          written: set[str]) -> str | None:
    """Why the case broke its promise, or None when it held."""
    lines = stderr.strip().splitlines()
    if code != case.code:
        return f"exit {code}, expected {case.code}; stderr: {stderr.strip()[-200:]!r}"
    if "Traceback" in stderr:
        return "a traceback"
    if len(lines) != 1 or not lines[0].startswith("error:"):
        return f"{len(lines)} stderr line(s), expected one 'error:' line: {stderr[-200:]!r}"
    if fragment not in lines[0]:
        return f"{fragment!r} not in {lines[0]!r}"
    if written:
        return f"wrote {sorted(written)[:3]}"
    return None


def env_for(case: Case, box: Sandbox) -> dict[str, str]:
    """The case's environment additions: the sandbox's cache unless the row names another."""
    env = {"DEEPREC_CACHE_DIR": str(box.paths["cache"])}
    return {**env, **{k: box.fill(v) or v for k, v in case.env.items()}}


def run_subprocess(argv: list[str], env: dict[str, str], tree: Path,
                   timeout: float) -> tuple[int | None, str]:
    """`python -m bench argv` in `tree` (cwd and PYTHONPATH); (exit code, stderr).

    The command gets its own session; on timeout every process of that session
    (workers run in their own process groups) is killed, and the code is None.
    """
    full_env = {**os.environ, **env, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=tree, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
        return proc.returncode, stderr
    except subprocess.TimeoutExpired:
        _kill_session(proc.pid)
        _, stderr = proc.communicate()
        return None, stderr + f"\n(still running after {timeout:g} s: killed)"


def _kill_session(sid: int) -> None:
    """SIGKILL every process whose session id is `sid` (the command and all its workers)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:
                os.kill(int(stat.parent.name), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue
