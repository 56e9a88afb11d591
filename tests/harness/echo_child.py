"""A server child without a framework, for test_process.py: bench.studies.child_server.serve.

Requests: `ping` (an empty answer), `spawn` (starts a grandchild that sleeps,
answers its pid), `hang` (never answers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.studies.child_server import Answer, Handlers, serve


def _spawn() -> Answer:
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    return {"pid": grandchild.pid}


def _hang() -> Answer:
    time.sleep(60)
    return {}


def _build() -> tuple[Answer, Handlers]:
    print("frameworks print to stdout freely", flush=True)  # not part of the protocol
    return {"ready": True, "pid": os.getpid()}, {"ping": lambda: {}, "spawn": _spawn, "hang": _hang}


if __name__ == "__main__":
    serve(_build)
