"""SIGINT and SIGTERM to `data build` and `report`: exit 130, and what readers see stays whole.

A build interrupted part way leaves no cache or a complete one (never a
version folder no pointer names, never a private folder), and the next build
succeeds; a SIGKILLed one, which cleans up nothing, does not stop the next
build either (clean_stale). An interrupted report leaves the previous report
byte for byte, or the complete new one, and no private `.report-*` folder.
Each command runs in its own session with TMPDIR set to an empty folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.data import cache, store
from bench.process import interruptible
from tests.faults.test_signals import SIGNALS, _wait_for
from tests.harness.conftest import ROOT

# Large enough that preprocessing (~1.5 s) and writing outlast a loaded machine's delay
# between reading the log line and signalling (400k ratings built in 0.5 s and raced).
DATASET = "synthetic:users=5000,movies=2000,ratings=3000000,seed=0"
# 45 runs (a committed study that stays as it is): a report with plots, about 2 s
STUDY = ROOT / "results" / "archive" / "runs-3-seeds-cache-split" / "records.jsonl"


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=ROOT,
                            env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc, tmp


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc, tmp = _start(tmp_path, *args)
    out, err = proc.communicate(timeout=120)
    assert os.listdir(tmp) == [], "a temp file outlived the command"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _read_until(proc: subprocess.Popen[str], text: str) -> str:
    """stderr up to and including the first line holding `text` (the work is under way)."""
    assert proc.stderr is not None
    seen = ""
    while text not in seen:
        line = proc.stderr.readline()
        assert line, f"never saw {text!r}; stderr: {seen}"
        seen += line
    return seen


def _interrupted(proc: subprocess.Popen[str], tmp: Path, sig: int, err: str = "") -> None:
    """Send `sig`; the command exits 130 with the one line "interrupted", leaving no temp file."""
    proc.send_signal(sig)
    err += proc.communicate(timeout=60)[1]
    own = [line for line in err.splitlines() if not line.startswith("INFO ")]
    assert (proc.returncode, own) == (130, ["interrupted"]), err
    assert os.listdir(tmp) == [], "a temp file outlived the command"


# -- data build ------------------------------------------------------------------------


def _data(tmp_path: Path, action: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    return _bench(tmp_path, "data", action, "--dataset", DATASET,
                  "--cache-dir", str(cache_dir))


def _check_cache_whole(tmp_path: Path, cache_dir: Path) -> None:
    """No cache (verify: one line, exit 2) or a complete one, and nothing half-written beside it."""
    final = cache.cache_path(DATASET, cache_dir)
    entries = sorted(cache_dir.iterdir()) if cache_dir.exists() else []
    verify = _data(tmp_path, "verify", cache_dir)
    if final.is_symlink():
        assert verify.returncode == 0, verify.stderr
        assert entries == [final, store.current(final)]
    else:
        assert (verify.returncode, len(verify.stderr.splitlines())) == (2, 1), verify.stderr
        assert entries == [], "a version folder or private folder left behind"


@pytest.mark.parametrize(("sig", "during"), [
    (signal.SIGINT, "preprocessing"), (signal.SIGTERM, "preprocessing"),
    (signal.SIGINT, "writing"), (signal.SIGTERM, "writing")],
    ids=["SIGINT-preprocessing", "SIGTERM-preprocessing", "SIGINT-writing", "SIGTERM-writing"])
def test_data_build_interrupted(tmp_path: Path, sig: int, during: str) -> None:
    cache_dir = tmp_path / "cache"
    proc, tmp = _start(tmp_path, "data", "build", "--dataset", DATASET,
                       "--cache-dir", str(cache_dir))
    err = _read_until(proc, f"INFO bench.data.cache: {during}")
    _interrupted(proc, tmp, sig, err)
    _check_cache_whole(tmp_path, cache_dir)
    assert _data(tmp_path, "build", cache_dir).returncode == 0
    assert _data(tmp_path, "verify", cache_dir).returncode == 0


def test_data_build_killed_then_rebuilt(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    proc, _ = _start(tmp_path, "data", "build", "--dataset", DATASET,
                     "--cache-dir", str(cache_dir))
    _read_until(proc, "INFO bench.data.cache: writing")
    proc.kill()  # mid-write or just after: nothing is cleaned up
    proc.communicate(timeout=60)
    assert _data(tmp_path, "build", cache_dir).returncode == 0
    assert _data(tmp_path, "verify", cache_dir).returncode == 0
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(store.TMP_PREFIX)]


@pytest.mark.parametrize("plain", [False, True], ids=["new", "over-a-plain-folder"])
def test_an_interrupt_while_the_version_is_placed_waits_for_the_pointer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain: bool) -> None:
    """SIGINT right after a rename in store.write: the cache is still complete afterwards."""
    tiny = "synthetic:users=100,movies=80,ratings=2000,seed=0"
    final = cache.cache_path(tiny, tmp_path)
    if plain:  # a cache from before versions: moved aside, then the pointer replaces it
        version = store.current(cache.build(tiny, cache_dir=tmp_path))
        final.unlink()
        version.rename(final)
    rename, fired = os.rename, []

    def rename_then_interrupt(src: str | Path, dst: str | Path) -> None:
        rename(src, dst)
        if not fired:  # once: a second SIGINT, deferred, could land after pytest.raises
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "rename", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt), interruptible():
        cache.build(tiny, cache_dir=tmp_path, force=plain)
    monkeypatch.undo()
    assert final.is_symlink() and cache.verify(tiny, tmp_path)
    assert sorted(p for p in tmp_path.iterdir() if p.name.startswith(final.name)) == [
        final, *store.versions(final)[-1 - plain:]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(store.TMP_PREFIX)]


# -- report ----------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _report(tmp_path: Path, results: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return _bench(tmp_path, "report", "--results", str(results), "--out", str(out))


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_report_interrupted_keeps_the_previous_report(tmp_path: Path, sig: int) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    results.mkdir()
    lines = STUDY.read_text().splitlines(keepends=True)
    (results / "records.jsonl").write_text("".join(lines[:30]))
    assert _report(tmp_path, results, out).returncode == 0
    before = _files(out)
    (results / "records.jsonl").write_text("".join(lines))
    proc, tmp = _start(tmp_path, "report", "--results", str(results), "--out", str(out))
    _wait_for(lambda: any(out.glob(".report-*/plots/*.png")), "the second report's first plot")
    _interrupted(proc, tmp, sig)
    assert not list(out.glob(".report-*")), "the private folder outlived the report"
    after = _files(out)
    if after != before:  # then it must be the whole new report
        shutil.rmtree(out)
        assert _report(tmp_path, results, out).returncode == 0
        assert after == _files(out)


def test_an_interrupt_while_the_report_is_moved_in_waits_for_the_last_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT right after the first rename in files.write: the new report is there whole."""
    from bench.report import build, files

    records = [json.loads(line) for line in STUDY.read_text().splitlines()]
    old, new = (build.build(part, tmp_path) for part in (records[:30], records))
    files.write(old, tmp_path / "out", with_plots=False)
    files.write(new, tmp_path / "whole", with_plots=False)
    replace = os.replace

    def replace_then_interrupt(src: str | Path, dst: str | Path) -> None:
        replace(src, dst)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt), interruptible():
        files.write(new, tmp_path / "out", with_plots=False)
    monkeypatch.undo()
    assert _files(tmp_path / "out") == _files(tmp_path / "whole")
