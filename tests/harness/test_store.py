"""The results store: round trip, torn lines, concurrent writers, directory checks."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.record import STATUS_FAILED, STATUS_OK, RunRecord, new_run_id
from bench.store import RECORDS_FILE, ResultsStore, check_results_dir


def make_record(status: str = STATUS_OK, spec_hash: str = "abc", repeat: int = 0,
                padding: int = 0) -> RunRecord:
    return RunRecord(
        run_id=new_run_id(), status=status, impl="fake", spec={"seed": 0, "layer_sizes": [8]},
        spec_hash=spec_hash, repeat=repeat, dataset={"name": "tiny", "content_hash": "h"},
        started_at="2024-01-01T00:00:00+00:00", error="x" * padding or None,
    )


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r")
    rec = make_record()
    store.append(rec)
    (back,) = store.records()
    assert back == rec
    assert store.has_run(rec.run_id)
    assert not store.has_run(new_run_id())


def test_nan_and_numpy_values_are_stored_as_strict_json(tmp_path: Path) -> None:
    import numpy as np

    store = ResultsStore(tmp_path)
    rec = make_record()
    rec.figures = {"loss": float("nan"), "n": np.int64(3), "curve": np.array([1.5, np.inf])}
    store.append(rec)
    line = (tmp_path / RECORDS_FILE).read_text()
    assert json.loads(line)["figures"] == {"loss": None, "n": 3, "curve": [1.5, None]}


def test_torn_line_is_skipped_and_never_swallows_the_next_record(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    first = make_record()
    store.append(first)
    with open(tmp_path / RECORDS_FILE, "a") as f:
        f.write('{"run_id": "torn", "status": "o')  # a writer killed mid-line
    second = make_record()
    store.append(second)
    assert [r.run_id for r in store.records()] == [first.run_id, second.run_id]


def test_ok_records_only_hold_ok_records(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append(make_record(STATUS_OK, "a", 0))
    store.append(make_record(STATUS_FAILED, "b", 0))
    store.append(make_record(STATUS_OK, "a", 1))
    assert {r.key() for r in store.ok_records()} == {("a", 0, "h"), ("a", 1, "h")}


def _writer(root: str, worker: int, count: int) -> None:
    store = ResultsStore(root)
    for i in range(count):
        # Some records far beyond PIPE_BUF, so only the lock keeps them whole.
        rec = make_record(spec_hash=f"w{worker}", repeat=i, padding=200_000 if i % 5 == 0 else 10)
        store.append(rec)


def test_concurrent_writers_lose_and_corrupt_nothing(tmp_path: Path) -> None:
    writers, count = 6, 25
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, count)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    lines = (tmp_path / RECORDS_FILE).read_text().splitlines()
    assert len(lines) == writers * count
    keys = {(d["spec_hash"], d["repeat"]) for d in map(json.loads, lines)}  # every line whole
    assert keys == {(f"w{w}", i) for w in range(writers) for i in range(count)}


def test_check_results_dir_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    check_results_dir(target)
    assert not (tmp_path / "a").exists()


def test_results_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        check_results_dir(blocker)
    with pytest.raises(UsageError, match="not writable"):
        check_results_dir(blocker / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_results_dir_is_a_usage_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="readable and writable"):
        check_results_dir(locked)
