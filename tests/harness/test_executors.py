"""Executors without a cluster: Ray missing is one line; a worker never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.cli import main
from bench.commands import run as run_command
from tests.harness.conftest import DATASET, ROOT


def test_the_ray_executor_without_ray_is_one_line_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    monkeypatch.setattr(run_command, "ray_installed", lambda: False)
    code = main(["run", "--impl", "tests.harness.fake_impl:FakeImpl", "--dataset", DATASET,
                 "--executor", "ray", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "deeprec-bench[ray]" in err[0]
    assert not (tmp_path / "r").exists()


def test_a_worker_dies_with_the_parent_that_started_it(tmp_path: Path) -> None:
    """bench.process.die_with_parent: SIGKILL the parent alone, and its worker dies too."""
    parent_code = (
        "import sys, time; from pathlib import Path\n"
        "from bench.process import WorkerProcess, worker_env\n"
        f"p = WorkerProcess('tests.harness.echo_child', [], worker_env(), Path({str(tmp_path)!r})"
        " / 'c.log', stdin=True)\n"
        "p.start(); p.next_event(time.perf_counter_ns() + 30 * 10**9)\n"
        "print(p.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(child)
