"""Damaged records stores: one tolerant reader for `--resume`, `report` and the retrieval report.

A foreign, torn, unknown-status or wrongly typed line is left out with its
reason by every reader (bench/store.py ResultsStore.scan), never a crash; and
`report` replaces its files all at once or not at all.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.record import problem
from bench.report import files
from bench.retrieval.contenders import CONTENDERS
from bench.retrieval.records import Setting, build_record
from bench.retrieval.report import render, select
from bench.store import RECORDS_FILE, ResultsStore, atomic_write
from tests.report.records import make_record, study, write_study

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.harness.fake_impl:FakeImpl"
DATA = "tests.fixtures:make_dataset"


def _with(rec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `rec` with the dotted field `path` set to `value` (or removed: ...)."""
    out = copy.deepcopy(rec)
    *parents, last = path.split(".")
    d = out
    for name in parents:
        d = d[name]
    if value is ...:
        del d[last]
    else:
        d[last] = value
    return out


GOOD = make_record()
# (what, the stored line): every one a line a reader must leave out with a reason.
DAMAGED: list[tuple[str, str]] = [
    ("foreign", '{"run_id": "x"}'),
    ("unknown status", json.dumps(_with(GOOD, "status", "exploded"))),
    ("accuracy a string", json.dumps(_with(GOOD, "figures.top100_accuracy_impl", "abc"))),
    ("layer sizes a string", json.dumps(_with(GOOD, "spec.layer_sizes", "x"))),
    ("no spec", json.dumps(_with(GOOD, "spec", ...))),
    ("repeat a bool", json.dumps(_with(GOOD, "repeat", True))),
    ("curve not lists", json.dumps(_with(GOOD, "curve.epoch_s", 3))),
    ("a fractional epoch", json.dumps(_with(GOOD, "curve.val_epoch", [1.5, 1e308]))),
    ("gpus a string", json.dumps(_with(GOOD, "environment.gpus", "A100"))),
    ("not JSON", "{not json"),
    ("a list", "[1, 2]"),
]


def _store_with_damage(root: Path, good: list[dict[str, Any]]) -> Path:
    write_study(root, good)
    with open(root / RECORDS_FILE, "a") as f:
        f.writelines(line + "\n" for _, line in DAMAGED)
        f.write('{"run_id": "torn", "sta')  # a writer killed mid-line: no newline
    return root


def test_scan_keeps_the_good_and_counts_every_other_line_with_its_reason(tmp_path: Path) -> None:
    root = _store_with_damage(tmp_path / "r", [GOOD])
    found = ResultsStore(root).scan(problem)
    assert [r["run_id"] for r in found.records] == [GOOD["run_id"]]
    assert sum(found.skipped.values()) == len(DAMAGED) + 1
    reasons = " ".join(found.skipped)
    for fragment in ("no spec", "status 'exploded' (unknown)", "figures.top100_accuracy_impl",
                     "spec.layer_sizes", "repeat is bool", "curve.epoch_s", "environment.gpus",
                     "not JSON", "not a record", "torn line"):
        assert fragment in reasons, fragment
    assert "left out 12 line(s)" in found.explain()
    # The plain reader keeps whole objects with a run_id; records() and ok_records() never raise.
    assert len(ResultsStore(root).scan().records) == len(DAMAGED) - 2 + 1
    store = ResultsStore(root)
    assert [r.run_id for r in store.records()] == [GOOD["run_id"]]
    assert {r.key() for r in store.ok_records()} == {(GOOD["spec_hash"], 0, "abc123")}


def test_resume_leaves_out_what_report_leaves_out(tmp_path: Path) -> None:
    """`bench run --resume` on a store with foreign and damaged lines: runs, skips, no crash."""
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench", "run", "--impl", FAKE, "--dataset", DATA,
           "--results", str(results), "--epochs", "1", "--depth", "1", "--batch-size", "500",
           "--retrieve-seconds", "0.05", "--no-progress", "--resume"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    with open(results / RECORDS_FILE, "a") as f:
        f.writelines(line + "\n" for _, line in DAMAGED)
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr and "left out" in again.stderr
    ok = [r for r in ResultsStore(results).records() if r.status == "ok"]
    assert len(ok) == 1  # the finished run was skipped, not run again


def test_report_lists_damaged_records_as_left_out(tmp_path: Path, capsys) -> None:
    results = _store_with_damage(tmp_path / "r", study({"keras-jax": [0.3, 0.31]}))
    out = tmp_path / "out"
    assert main(["report", "--no-plots", "--results", str(results), "--out", str(out)]) == 0
    text = (out / "README.md").read_text()
    assert "2 finished training run(s)" in text
    assert "malformed record (figures.top100_accuracy_impl is str, not a number)" in text
    assert "malformed record (spec.layer_sizes is 'x'" in text
    assert "status 'exploded'" in text
    assert "Traceback" not in capsys.readouterr().err


def test_report_writes_all_its_files_or_none(tmp_path: Path, monkeypatch) -> None:
    """A failure while the report is being built leaves every old file as it was."""
    results = write_study(tmp_path / "r", study({"keras-jax": [0.3, 0.31], "jax": [0.3, 0.3]}))
    out = tmp_path / "out"
    assert main(["report", "--no-plots", "--results", str(results), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_study(results, study({"torch": [0.2, 0.21]}))  # the next report would differ
    calls = {"n": 0}
    real = files.csv_text

    def failing(rows):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # two CSVs are written, the third fails
            raise RuntimeError("disk on fire")
        return real(rows)

    monkeypatch.setattr(files, "csv_text", failing)
    assert main(["report", "--no-plots", "--results", str(results), "--out", str(out)]) != 0
    assert calls["n"] == 3
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no private folder left


def test_report_to_an_unwritable_place_is_one_line(tmp_path: Path, capsys) -> None:
    results = write_study(tmp_path / "r", study({"keras-jax": [0.3]}))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["report", "--no-plots", "--results", str(results), "--out",
                 str(blocker / "sub")])
    assert code == 2 and "Traceback" not in capsys.readouterr().err
    assert blocker.read_text() == "x"


def _retrieval(status: str = "ok") -> dict[str, Any]:
    setting = Setting(1000, 32, 100, 10, {}, 0, 100, "gaussian-mixture-v1")
    return build_record(CONTENDERS["faiss-flat"], setting, status=status, content_hash="abc",
                        figures={"qps": 100.0, "recall": 1.0}, built={"build_s": 0.1},
                        context={"environment": {"cpu_model": "Test CPU"}})


@pytest.mark.parametrize("damage", [("spec", ...), ("spec", "x"), ("spec.dim", "32"),
                                    ("figures.qps", "fast"), ("figures", None),
                                    ("figures.recall", ...),
                                    ("status", "exploded"), ("impl_info", ...),
                                    ("environment.gpus", 3)])
def test_retrieval_report_leaves_out_a_damaged_record(damage: tuple[str, Any]) -> None:
    good, bad = _retrieval(), _with(_retrieval(), *damage)
    recs, left_out = select([good, bad, GOOD])  # a training record is simply another kind
    assert recs == [good]
    assert sum(left_out.values()) == 1 and "malformed record" in next(iter(left_out))
    text = render([good, bad])
    assert "Left out: 1 record(s) malformed record (" in text
    assert "No retrieval records" in render([bad])


def test_atomic_writes_are_readable_by_others(tmp_path: Path) -> None:
    """atomic_write's file gets open()'s mode (0666 less the umask), not mkstemp's 0600."""
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
