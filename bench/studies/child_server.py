"""A child process that holds one built implementation and answers JSON lines.

Parent side of the line protocol shared by the speed script and the
benchmarks: the child runs `python -m <module> <args>` with the
implementation's registry environment, sends one JSON line once built and
warmed up, then answers each command line on stdin with one JSON line. The
parent imports no framework.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import registry

ROOT = Path(__file__).resolve().parents[2]


class ChildServer:
    """Start `python -m module *args` for implementation `name`; talk in JSON lines."""

    def __init__(self, name: str, module: str, args: list[str]) -> None:
        env = dict(os.environ)
        env.update(registry.get(name).env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=ROOT, env=env, text=True,
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
