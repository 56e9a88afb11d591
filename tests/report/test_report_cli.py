"""`python -m bench report` end to end on synthetic records: files, bytes, exit codes."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from bench.cli import main
from tests.report.records import make_record, study, write_study

BASE = [0.300, 0.305, 0.310]
TEXT_FILES = ("README.md", "training.csv", "retrieval_latency.csv", "parity.csv")


def _records(torch_gap: float = 0.0) -> list[dict]:
    recs = study({"keras-jax": BASE, "jax": [a + 0.0005 for a in BASE],
                  "torch": [a - torch_gap for a in BASE]}, epoch_s={"jax": 0.4})
    recs += study({"keras-jax": BASE, "jax": BASE}, layers=(128, 64, 32))
    recs.append(make_record(impl="torch", seed=7, status="failed"))
    recs.append(make_record(impl="jax", environment={"cpu_model": "Other CPU"}))
    return recs


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "records.jsonl"}


def test_report_writes_tables_csv_and_plots(tmp_path: Path, capsys) -> None:
    results = write_study(tmp_path / "results", _records())
    assert main(["report", "--results", str(results)]) == 0
    files = _snapshot(results)
    for name in TEXT_FILES:
        assert name in files
    pngs = [n for n in files if n.endswith(".png")]
    assert len(pngs) == 3 * 4  # three groups, four plots each
    assert all(files[n].startswith(b"\x89PNG") for n in pngs)
    readme = files["README.md"].decode()
    assert "Test CPU 9000 (2 logical cores)" in readme and "Other CPU" in readme
    assert "content hash `abc123`" in readme
    assert "1 record(s): status 'failed'" in readme
    assert "differ in: machine" in readme
    assert "numpy 2.0.0" in readme  # versions are stated with every table
    for png in pngs:
        assert f"({png})" in readme
    out = capsys.readouterr().out
    assert "jax vs keras-jax: equivalent" in out


def test_training_csv_has_ratios_to_the_baseline_on_the_same_machine(tmp_path: Path) -> None:
    results = write_study(tmp_path / "r", _records())
    main(["report", "--results", str(results), "--no-plots"])
    rows = list(csv.DictReader(io.StringIO((results / "training.csv").read_text())))
    depth1 = {r["impl"]: r for r in rows if r["layer_sizes"] == "32"
              and r["machine"].startswith("Test CPU")}
    assert set(depth1) == {"keras-jax", "jax", "torch"}
    assert float(depth1["keras-jax"]["train_epoch_s_ratio"]) == 1.0
    assert float(depth1["jax"]["train_epoch_s_ratio"]) == pytest.approx(0.4, rel=0.1)
    other = [r for r in rows if r["machine"].startswith("Other CPU")]
    assert len(other) == 1 and other[0]["train_epoch_s_ratio"] == ""  # no baseline there


def test_rerun_is_byte_identical_whatever_the_append_order(tmp_path: Path) -> None:
    recs = _records(torch_gap=0.05)
    first = write_study(tmp_path / "a", recs)
    main(["report", "--results", str(first)])
    snap1 = _snapshot(first)
    main(["report", "--results", str(first)])
    assert _snapshot(first) == snap1  # README, CSVs and PNGs alike
    shuffled = list(recs)
    random.Random(3).shuffle(shuffled)
    second = write_study(tmp_path / "b", shuffled)
    main(["report", "--results", str(second)])
    snap2 = _snapshot(second)
    for name in TEXT_FILES:
        assert snap2[name] == snap1[name]


def test_check_exits_nonzero_only_on_a_different_verdict(tmp_path: Path, capsys) -> None:
    same = write_study(tmp_path / "same", _records())
    assert main(["report", "--results", str(same), "--check", "--no-plots"]) == 0
    differ = write_study(tmp_path / "differ", _records(torch_gap=0.05))
    assert main(["report", "--results", str(differ), "--no-plots"]) == 0  # report only
    assert main(["report", "--results", str(differ), "--check", "--no-plots"]) == 1
    assert "torch vs keras-jax" in capsys.readouterr().out
    assert "**different**" in (differ / "README.md").read_text()


def test_out_dir_and_baseline_options(tmp_path: Path) -> None:
    results = write_study(tmp_path / "r", _records())
    out = tmp_path / "elsewhere"
    assert main(["report", "--results", str(results), "--out", str(out),
                 "--baseline", "jax", "--no-plots"]) == 0
    assert not (results / "README.md").exists()
    text = (out / "README.md").read_text()
    assert "Baseline: **jax**" in text and "keras-jax vs jax" not in text
    assert "| keras-jax |" in text


@pytest.mark.parametrize("case", ["missing", "empty", "bad_margin", "missing_pytest_file",
                                  "export_is_a_dir"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, capsys,
                                                         case: str) -> None:
    results = tmp_path / "results"
    args = ["report", "--results", str(results), "--out", str(tmp_path / "out")]
    if case != "missing":
        results.mkdir()
    if case in ("bad_margin", "missing_pytest_file", "export_is_a_dir"):
        write_study(results, _records())
        args += {"bad_margin": ["--margin", "-1"],
                 "missing_pytest_file": ["--pytest-benchmark", str(tmp_path / "nope.json")],
                 "export_is_a_dir": ["--export-pytest-benchmark", str(tmp_path)]}[case]
    before = sorted(tmp_path.rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_defaults_read_results_runs_and_write_results(tmp_path: Path, monkeypatch) -> None:
    write_study(tmp_path / "results" / "runs", _records())
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--no-plots"]) == 0
    text = (tmp_path / "results" / "README.md").read_text()
    assert "records in [runs/records.jsonl](runs/records.jsonl)" in text
    assert (tmp_path / "results" / "training.csv").is_file()
    assert not (tmp_path / "results" / "runs" / "README.md").exists()


def test_no_plots_writes_tables_only(tmp_path: Path) -> None:
    results = write_study(tmp_path / "r", _records())
    assert main(["report", "--results", str(results), "--no-plots"]) == 0
    assert not (results / "plots").exists()
    assert "![" not in (results / "README.md").read_text()
    assert (results / "parity.csv").is_file()


def test_report_never_imports_a_framework(tmp_path: Path) -> None:
    import subprocess
    import sys

    results = write_study(tmp_path / "r", _records())
    code = ("import sys; from bench.cli import main; "
            f"rc = main(['report', '--results', {str(results)!r}]); "
            "mods = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'jax', 'torch', 'tensorflow', 'keras', 'keras_rs'}); print(rc, mods)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stderr


def test_timing_ratios_say_when_runs_did_not_interleave_with_the_baseline(
        tmp_path: Path) -> None:
    recs = study({"keras-jax": BASE, "jax": BASE, "torch": BASE, "keras-tf": BASE})
    for rec in recs:
        if rec["impl"] == "torch":  # an hour after keras-jax, in another time zone's notation
            rec["started_at"] = rec["started_at"].replace("T10:", "T13:").replace(
                "+00:00", "+02:00")
        elif rec["impl"] == "keras-tf":  # before and after keras-jax's span, never within it
            hour = "T09:" if rec["spec"]["seed"] == 0 else "T12:"
            rec["started_at"] = rec["started_at"].replace("T10:", hour)
    records = [*recs, {**recs[0], "run_id": "no-start", "started_at": ""}]  # left out
    results = write_study(tmp_path / "r", records)
    assert main(["report", "--results", str(results), "--no-plots"]) == 0
    readme = (results / "README.md").read_text()
    assert ("Not interleaved with keras-jax: keras-tf, torch. None of their runs started "
            "within keras-jax's (started, UTC: keras-jax 2026-11-29 10:00 to 10:02; "
            "keras-tf 2026-11-29 09:00 to 12:02; torch 2026-11-29 11:00 to 11:02)") in readme
    assert readme.count("Not interleaved") == 1  # jax, interleaved, is not named
    interleaved = write_study(tmp_path / "i", study({"keras-jax": BASE, "torch": BASE}))
    assert main(["report", "--results", str(interleaved), "--no-plots"]) == 0
    assert "Not interleaved" not in (interleaved / "README.md").read_text()
