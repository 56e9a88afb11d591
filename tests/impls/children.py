"""Runs each implementation's checks in its own child process, a few at a time.

The main pytest process never imports a framework: for every installed
registry entry it starts `python -m pytest tests/impls/impl_checks.py` with
DEEPREC_IMPL=<name> and the entry's env (KERAS_BACKEND, ...). All children
start on first use (at most MAX_PARALLEL at once); each test then waits for
the one it needs, so the slow imports and compilations overlap.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import registry
from bench.process import worker_env
from bench.weights import save_weights
from tests.impls import parity

ROOT = Path(__file__).resolve().parents[2]
MAX_PARALLEL = 3
CHILD_TIMEOUT_S = 400


@dataclass
class ChildResult:
    name: str
    returncode: int
    output: str
    parity_file: Path

    def tail(self, chars: int = 6000) -> str:
        return self.output[-chars:]


# Implementations that start from their own weights on their own split (shared_start
# False: keras-reference*). The shared-start conformance checks (weight import and
# round trip, restarts, the parity dump) cannot apply; test_keras_reference.py runs
# the checks that do (reference_checks.py).
OWN_START: tuple[str, ...] = tuple(n for n, e in registry.REGISTRY.items() if not e.shared_start)


def installed_names() -> list[str]:
    """Installed implementations the shared-start conformance checks apply to."""
    return [name for name, entry in registry.REGISTRY.items()
            if entry.installed() and name not in OWN_START]


class Children:
    """Starts every installed implementation's checks once; hands out their results."""

    def __init__(self, names: list[str]) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="deeprec-impls-"))
        self._weights = self._dir / "parity_initial.npz"
        save_weights(self._weights, parity.initial_weights())
        self._pending = list(names)
        self._running: dict[str, tuple[subprocess.Popen[str], Path]] = {}
        self._done: dict[str, ChildResult] = {}

    def _env(self, name: str, out: Path) -> dict[str, str]:
        return worker_env(registry.get(name).env, {
            "DEEPREC_IMPL": name,
            "DEEPREC_PARITY_WEIGHTS": str(self._weights),
            "DEEPREC_PARITY_OUT": str(out),
        })

    def _start_more(self) -> None:
        while self._pending and len(self._running) < MAX_PARALLEL:
            name = self._pending.pop(0)
            out = self._dir / f"{name}.npz"
            cmd = [sys.executable, "-m", "pytest", "tests/impls/impl_checks.py", "-q",
                   "-p", "no:cacheprovider", "-o", "addopts=", "--timeout", str(CHILD_TIMEOUT_S)]
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self._env(name, out), text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            self._running[name] = (proc, out)

    def result(self, name: str) -> ChildResult:
        """Wait for `name`'s child (starting queued ones as others finish)."""
        self._start_more()
        if name not in self._running and name not in self._done:
            self._pending.remove(name)
            self._pending.insert(0, name)
            self._start_more()
        while name not in self._done:
            # Wait on the oldest running child; finishing it frees a slot.
            oldest = name if name in self._running else next(iter(self._running))
            proc, out = self._running.pop(oldest)
            try:
                output, _ = proc.communicate(timeout=CHILD_TIMEOUT_S + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
                output += "\n[killed: child timed out]"
            self._done[oldest] = ChildResult(oldest, proc.returncode, output, out)
            self._start_more()
        return self._done[name]
