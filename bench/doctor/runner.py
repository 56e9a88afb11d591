"""The doctor's parent: one child per framework, their rows gathered into a `Report`.

Never imports a framework. A framework that is not installed here (found with
importlib.util.find_spec) gets a row saying which extra installs it and no
child; every other one is inspected by `python -m bench.doctor.probes` in its
own process (bench/process.py's launcher), with Keras on that backend in the
same child (KERAS_BACKEND set as for its keras-* worker). A child that
crashes or overruns the timeout leaves an `error` row for what it did not
report, and the others go on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import envinfo
from bench.doctor.probes import ROW, Row
from bench.process import TIMED_OUT, WorkerProcess, worker_env


@dataclass(frozen=True)
class Framework:
    """One child: a framework (probe name = top-level module) and how to start it."""

    name: str
    extra: str  # the pip extra that installs its CPU build (pyproject.toml)
    keras: bool  # Keras runs on it: that row comes from the same child
    env: Mapping[str, str] = field(default_factory=dict)

    def expected(self) -> list[str]:
        """The names of the rows its child reports."""
        return [self.name] + ([f"keras ({self.name})"] if self.keras else [])


# The jax child sees every platform (a JAX_PLATFORMS in the caller's shell never reaches a
# run's worker, which gets its own), and must not take 75% of a GPU's memory to list it.
FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (
    Framework("jax", "jax", True, {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "",
                                   "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}),
    Framework("tensorflow", "tf", True, {"KERAS_BACKEND": "tensorflow"}),
    Framework("torch", "torch", True, {"KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"}),
    Framework("faiss", "retrieval", False),
)}


@dataclass
class Report:
    """The machine's GPUs as nvidia-smi lists them, and one Row per framework or backend."""

    machine: dict[str, Any]
    rows: list[Row]

    def failed(self) -> list[Row]:
        """Rows whose framework could not be inspected (the doctor's exit code 1)."""
        return [r for r in self.rows if r.error]

    def gpu_ready(self) -> list[str]:
        """Rows where `--device gpu` would work."""
        return [r.name for r in self.rows if r.gpu]

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "frameworks": [dataclasses.asdict(r) for r in self.rows],
                "gpu_ready": self.gpu_ready()}


def machine() -> dict[str, Any]:
    """CPU and GPUs from the parent's side: nvidia-smi, never a framework."""
    gpu = envinfo.gpu_info()
    return {"cpu_model": envinfo.cpu_model(), "cpu_count": os.cpu_count(),
            "nvidia_smi": shutil.which("nvidia-smi") is not None, **gpu}


def inspect(names: Sequence[str], timeout_s: float,
            progress: Callable[[str], None] = lambda name: None) -> Report:
    """Inspect the named frameworks (FRAMEWORKS keys), in that order, each in its own child.

    Args:
        names: which frameworks.
        timeout_s: limit of one child, in seconds (an import on a cold disk can take a minute).
        progress: called with a framework's name when its child has ended.
    """
    frameworks = [FRAMEWORKS[n] for n in names]
    found: dict[str, list[Row]] = {}
    for fw in frameworks:
        if importlib.util.find_spec(fw.name) is None:
            found[fw.name] = [Row(fw.name, fw.name, installed=False,
                                  fix=f"pip install -e '.[{fw.extra}]'")]
            progress(fw.name)
    todo = [fw for fw in frameworks if fw.name not in found]
    with tempfile.TemporaryDirectory(prefix="deeprec-doctor-") as folder:
        found.update(_run_children(todo, Path(folder), timeout_s, progress))
    return Report(machine(), [row for fw in frameworks for row in found[fw.name]])


def _run_children(frameworks: list[Framework], folder: Path, timeout_s: float,
                  progress: Callable[[str], None]) -> dict[str, list[Row]]:
    """Every framework's child, at most one per CPU at once; on any exception, all killed."""
    procs = {fw.name: WorkerProcess(
        "bench.doctor.probes", [fw.name] + (["--keras"] if fw.keras else []),
        worker_env(fw.env), folder / f"{fw.name}.log") for fw in frameworks}
    found: dict[str, list[Row]] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(len(procs), os.cpu_count() or 1))) as pool:
        try:
            futures = {pool.submit(_watch, fw, procs[fw.name], timeout_s): fw.name
                       for fw in frameworks}
            for future in as_completed(futures):
                found[futures[future]] = future.result()
                progress(futures[future])
        finally:  # Ctrl-C: a child killed before it started never starts
            for proc in procs.values():
                proc.kill()
    return found


def _watch(fw: Framework, proc: WorkerProcess, timeout_s: float) -> list[Row]:
    """Run one child to its end: its rows, and an error row for each it did not send."""
    rows: list[Row] = []

    def take(event: dict[str, Any]) -> None:
        if event.get("event") == ROW:
            rows.append(Row(**{k: v for k, v in event.items() if k != "event"}))

    outcome = proc.watch(timeout_s, take)
    sent = {r.name for r in rows}
    if sent == set(fw.expected()):
        return rows
    last = (proc.log_tail(2000).splitlines() or ["(no output)"])[-1]
    why = (f"timed out after {timeout_s:g} s" if outcome == TIMED_OUT
           else f"its child exited {proc.returncode}: {last}")
    return rows + [Row(name, fw.name, error=f"not inspected: {why}")
                   for name in fw.expected() if name not in sent]
