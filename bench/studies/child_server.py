"""A child process that holds one built implementation and answers JSON lines.

Parent side of the line protocol shared by the speed script and the
benchmarks: the child runs `python -m <module> <args>` with the
implementation's registry environment (bench.process.worker_env), sends one
JSON line once built and warmed up, then answers each command line on stdin
with one JSON line. The parent imports no framework.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench import registry
from bench.envinfo import PROJECT_ROOT
from bench.process import worker_env


class ChildServer:
    """Start `python -m module *args` for implementation `name`; talk in JSON lines."""

    def __init__(self, name: str, module: str, args: list[str]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=PROJECT_ROOT,
            env=worker_env(registry.get(name).env), text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self.info = self._reply()  # sent once built and warmed up

    def _reply(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{type(self).__name__} child exited with code {self._proc.wait()}")
        return dict(json.loads(line))

    def ask(self, command: str) -> dict[str, Any]:
        """Send one command line; return the child's JSON answer."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self._proc.poll() is None:
            self.ask("quit")
            self._proc.wait(timeout=60)

    def __enter__(self) -> ChildServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
