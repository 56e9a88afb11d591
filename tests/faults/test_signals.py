"""Signals and worker faults for run, parity and retrieval: the same guarantees for each.

SIGINT or SIGTERM to the parent: exit 130, every unfinished run or setting
recorded "interrupted" (parity: no JSON written), no worker left, no temp
folder left. SIGKILL to a worker, or a worker that hangs past --timeout: its
run, group or pair is recorded failed / timed out and the rest goes on.

Each parent runs in its own session (the test's process group is safe), with
TMPDIR set to a fresh folder: every worker's command line names a file in it,
so a leftover worker or temp folder is easy to see. SIGINT is sent to parents
started with SIGINT ignored, as a script's background job is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.report.shared_start import FILE_NAME
from tests.faults.stall_impl import MARK_VAR
from tests.harness.conftest import ROOT

FAKE = "tests.harness.fake_impl:FakeImpl"
SAME = "tests.harness.parity_impls:SameImpl"
STALL = "tests.faults.stall_impl:StallImpl"
DATA = "tests.harness.fake_data:medium"
SIGNALS = [signal.SIGINT, signal.SIGTERM]


@dataclass
class Parent:
    """A `python -m bench` command under test, and the paths it may leave things in."""

    proc: subprocess.Popen[str]
    tmp: Path  # its TMPDIR
    mark: Path  # written by StallImpl once a worker is busy
    results: Path

    def records(self) -> list[dict[str, Any]]:
        path = self.results / "records.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def finish(self) -> tuple[int, str]:
        """Wait for the parent; check nothing outlived it; its exit code and stderr."""
        _, err = self.proc.communicate(timeout=60)
        assert _workers(self.tmp) == [], "a worker outlived its parent"
        assert sorted(os.listdir(self.tmp)) == [], "a temp folder outlived its parent"
        return self.proc.returncode, err


def _start(tmp_path: Path, *args: str, ignore_sigint: bool = False) -> Parent:
    tmp, results = tmp_path / "tmp", tmp_path / "results"
    tmp.mkdir()
    mark = tmp_path / "busy"
    env = {**os.environ, "TMPDIR": str(tmp), MARK_VAR: str(mark)}

    def setup() -> None:  # runs in the child before exec
        os.setsid()
        if ignore_sigint:  # what `bash -c 'python -m bench ... &'` hands down
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-m", "bench", *args, "--results", str(results)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=setup)
    return Parent(proc, tmp, mark, results)


def _wait_for(ready: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _workers(tmp: Path) -> list[int]:
    """Pids of live processes whose command line names something under `tmp`."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(tmp) in cmdline and ".worker" in cmdline:
            pids.append(int(entry.name))
    return pids


def _signal(parent: Parent, sig: int) -> None:
    parent.proc.send_signal(sig)


def _run(tmp_path: Path, impls: str, *extra: str, ignore_sigint: bool = False) -> Parent:
    return _start(tmp_path, "run", "--impl", impls, "--dataset", DATA, "--depth", "1",
                  "--epochs", "2", "--batch-size", "500", "--retrieve-seconds", "0.05",
                  "--no-progress", *extra, ignore_sigint=ignore_sigint)


def _parity(tmp_path: Path, impls: str, *extra: str, ignore_sigint: bool = False) -> Parent:
    return _start(tmp_path, "parity", "--impl", impls, "--reference", FAKE, "--dataset", DATA,
                  "--batch-size", "200", "--steps", "6", "--jobs", "3", *extra,
                  ignore_sigint=ignore_sigint)


def _retrieval(tmp_path: Path, budget_s: float, *extra: str,
               ignore_sigint: bool = False) -> Parent:
    return _start(tmp_path, "retrieval", "--candidates", "2000", "--dim", "8", "--k", "10",
                  "--impl", "numpy,numpy-blocked", "--repeats", "1000000", "--min-calls", "1",
                  "--budget", str(budget_s), "--no-report", *extra, ignore_sigint=ignore_sigint)


# -- SIGINT and SIGTERM to the parent ----------------------------------------------------


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_run_interrupted(tmp_path: Path, sig: int) -> None:
    parent = _run(tmp_path, f"{STALL},{FAKE}", ignore_sigint=True)
    _wait_for(parent.mark.exists, "the first worker busy")
    _signal(parent, sig)
    code, err = parent.finish()
    assert code == 130, err
    busy, pending = parent.records()
    assert busy["status"] == pending["status"] == "interrupted"
    assert busy["worker"]["pid"] == int(parent.mark.read_text())
    assert pending["worker"]["pid"] is None and "before it started" in pending["error"]
    assert "Traceback" not in err


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_parity_interrupted_writes_no_json(tmp_path: Path, sig: int) -> None:
    parent = _parity(tmp_path, f"{SAME},{STALL}", ignore_sigint=True)
    _wait_for(parent.mark.exists, "the stalling worker busy")
    _signal(parent, sig)
    code, err = parent.finish()
    assert code == 130, err
    assert f"{FILE_NAME} not written" in err and "Traceback" not in err
    assert not (parent.results / FILE_NAME).exists()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_retrieval_interrupted(tmp_path: Path, sig: int) -> None:
    parent = _retrieval(tmp_path, 2.0, "--batch", "1,2", ignore_sigint=True)
    _wait_for(lambda: len(parent.records()) >= 1, "the first setting's record")
    _signal(parent, sig)  # the second setting is in flight for about 2 s
    code, err = parent.finish()
    assert code == 130, err
    records = parent.records()
    assert [(r["impl"], r["spec"]["batch"], r["status"]) for r in records] == [
        ("numpy", 1, "ok"), ("numpy", 2, "interrupted"),
        ("numpy-blocked", 1, "interrupted"), ("numpy-blocked", 2, "interrupted")]
    in_flight, *never = records[1:]
    assert in_flight["worker"]["pid"] and in_flight["worker"]["exit_code"] is not None
    assert all(r["worker"]["pid"] is None for r in never)
    assert "Traceback" not in err


# -- SIGKILL to a worker ---------------------------------------------------------------


def test_run_killed_worker_is_failed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    parent = _run(tmp_path, f"{STALL},{FAKE}")
    _wait_for(parent.mark.exists, "the first worker busy")
    os.kill(int(parent.mark.read_text()), signal.SIGKILL)
    code, err = parent.finish()
    assert code == 1, err
    killed, ok = parent.records()
    assert killed["status"] == "failed" and killed["worker"]["signal"] == "SIGKILL"
    assert ok["status"] == "ok"


def test_parity_killed_worker_is_listed_failed(tmp_path: Path) -> None:
    parent = _parity(tmp_path, f"{SAME},{STALL}")
    _wait_for(parent.mark.exists, "the stalling worker busy")
    os.kill(int(parent.mark.read_text()), signal.SIGKILL)
    code, err = parent.finish()
    assert code == 1, err
    doc = json.loads((parent.results / FILE_NAME).read_text())
    assert [p["impl"] for p in doc["pairs"]] == [SAME]
    (failed,) = doc["failed"]
    assert failed.startswith(STALL) and failed.endswith("worker exit -9")


def test_retrieval_killed_worker_fails_its_group_and_the_study_goes_on(tmp_path: Path) -> None:
    parent = _retrieval(tmp_path, 1.0, "--batch", "1,2")
    _wait_for(lambda: len(parent.records()) >= 1, "the first setting's record")
    (pid,) = _workers(parent.tmp)
    os.kill(pid, signal.SIGKILL)
    code, err = parent.finish()
    assert code == 1, err
    records = parent.records()
    assert [(r["impl"], r["status"]) for r in records] == [
        ("numpy", "ok"), ("numpy", "failed"), ("numpy-blocked", "ok"), ("numpy-blocked", "ok")]
    assert records[1]["error"].startswith("worker exited with -9")


# -- a hung worker ---------------------------------------------------------------------


def test_parity_hung_worker_times_out(tmp_path: Path) -> None:
    parent = _parity(tmp_path, f"{SAME},{STALL}", "--timeout", "4")
    code, err = parent.finish()
    assert code == 1, err
    doc = json.loads((parent.results / FILE_NAME).read_text())
    assert [p["impl"] for p in doc["pairs"]] == [SAME]
    assert doc["failed"] == [f"{STALL} [32]: timed out after 4 s"]


def test_retrieval_overrunning_workers_time_out_and_the_study_goes_on(tmp_path: Path) -> None:
    parent = _retrieval(tmp_path, 60.0, "--batch", "1", "--timeout", "3")
    code, err = parent.finish()
    assert code == 1, err
    records = parent.records()
    assert [(r["impl"], r["status"]) for r in records] == [
        ("numpy", "timed out"), ("numpy-blocked", "timed out")]
    assert all(r["error"].startswith("timed out after 3 s") for r in records)
