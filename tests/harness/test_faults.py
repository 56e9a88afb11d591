"""Faults: crashed, hung and interrupted workers still leave exactly one record each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.commands import report
from bench.record import RunRecord, new_run_id
from bench.run.summary import check_warnings
from tests.harness.conftest import ROOT, bench_run, fake_args, read_lines


def test_crashed_workers_are_failed_records_and_the_sweep_goes_on(results: Path) -> None:
    out = bench_run(*fake_args("SegfaultImpl", "RaisingImpl", "AbortImpl", "FakeImpl"),
                    results=results)
    assert out.returncode == 1
    segv, raised, aborted, ok = read_lines(results)
    assert segv["status"] == "failed" and segv["worker"]["signal"] == "SIGSEGV"
    assert segv["error"].startswith("worker killed by SIGSEGV")
    assert "fake_impl.py" in segv["error"]  # faulthandler's traceback from the log
    assert segv["curve"]["epoch"] == [1]  # what it reported before dying
    assert raised["status"] == "failed" and raised["worker"]["exit_code"] == 1
    assert raised["error"].rstrip().endswith("RuntimeError: fake failure in epoch 2")
    assert raised["figures"]["build_s"] is not None  # partial figures survive
    assert aborted["status"] == "failed" and aborted["worker"]["signal"] == "SIGABRT"
    assert ok["status"] == "ok"
    assert ok["impl_info"]["compile_s_method"] == "first_epoch_minus_median_steady"
    assert (results / "logs" / f"{segv['run_id']}.log").exists()
    assert "SIGSEGV" in out.stderr


def test_a_hung_worker_times_out_and_is_killed(results: Path) -> None:
    out = bench_run(*fake_args("HangingImpl", "FakeImpl", extra=("--timeout", "10")),
                    results=results)
    assert out.returncode == 1
    hung, ok = read_lines(results)
    assert hung["status"] == "timed out" and hung["error"].startswith("timed out after 10 s")
    assert hung["worker"]["signal"] == "SIGTERM"  # SIGTERM reached it (not blocked)
    assert 10.0 <= hung["duration_s"] < 60
    assert ok["status"] == "ok"
    with pytest.raises(ProcessLookupError):
        os.kill(hung["worker"]["pid"], 0)


def _wait_for_lines(path: Path, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {count} line(s)")


def _communicate_or_dump(proc: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
    """communicate(); if the parent hangs, fail with its threads' stacks (SIGUSR1, bench/cli.py)."""
    try:
        return proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        _, stderr = proc.communicate()
        stacks = stderr[-6000:]
        raise AssertionError(f"no exit {timeout_s} s after SIGINT; stacks:\n{stacks}") from None


def test_ctrl_c_records_running_and_pending_runs_as_interrupted(results: Path) -> None:
    cmd = [sys.executable, "-m", "bench", "run",
           *fake_args("FakeImpl", "HangingImpl", extra=("--seed", "0-1")),
           "--results", str(results)]
    parent = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    _wait_for_lines(results / "records.jsonl", 1, timeout_s=60)  # the first run is done
    time.sleep(1.5)  # the hanging one is running
    parent.send_signal(signal.SIGINT)
    stdout, stderr = _communicate_or_dump(parent, timeout_s=60)
    assert parent.returncode == 130, stderr
    records = read_lines(results)
    assert [r["status"] for r in records] == ["ok", "interrupted", "interrupted", "interrupted"]
    running = records[1]
    assert running["impl"].endswith("HangingImpl") and running["worker"]["pid"]
    assert [r["worker"]["pid"] for r in records[2:]] == [None, None]  # never started
    with pytest.raises(ProcessLookupError):
        os.kill(running["worker"]["pid"], 0)  # the worker did not outlive the sweep
    assert stdout.count("interrupted") == 3


def test_a_worker_stuck_in_teardown_still_ends_promptly_and_ok(results: Path) -> None:
    start = time.monotonic()
    out = bench_run(*fake_args("TeardownHangImpl", extra=("--timeout", "60")), results=results)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - start < 25  # not held until the parent's grace period kills it
    (rec,) = read_lines(results)
    assert rec["status"] == "ok"


def test_an_unexpected_error_is_one_line_and_a_log(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def crash(args: object) -> int:
        raise OSError("disk on\nfire")

    monkeypatch.setattr(report, "run", crash)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["report"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: OSError: disk on fire (traceback in ")
    (log,) = (tmp_path / "deeprec-bench" / "logs").iterdir()
    assert line.endswith(f"{log})")
    text = log.read_text()
    assert text.startswith("python -m bench report\n") and "Traceback" in text
    assert "OSError: disk on" in text


def test_a_negative_compile_s_is_noted_as_a_difference() -> None:
    rec = RunRecord(run_id=new_run_id(), status="ok", impl="jax", spec={"seed": 0},
                    spec_hash="h", repeat=0, dataset={}, started_at="t",
                    figures={"compile_s": -0.3})
    (note,) = check_warnings([rec]).splitlines()
    assert "compile_s -0.30 s is negative" in note and "first epoch minus the median" in note
    rec.figures["compile_s"] = 0.3
    assert check_warnings([rec]) == ""
