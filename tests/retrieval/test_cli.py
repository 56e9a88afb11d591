"""`python -m bench retrieval`: bad input (in process) and a numpy + jax study (subprocess)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import UsageError
from bench.store import ResultsStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("flags", [
    ["--impl", "nmpy"],
    ["--candidates", "1000,abc"],
    ["--candidates", "0"],
    ["--dim", "0-2"],
    ["--k", "5000", "--candidates", "2000"],
    ["--batch", ""],
    ["--budget", "-1"],
    ["--timeout", "nan"],
    ["--repeats", "0"],
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capfd, flags) -> None:
    results = tmp_path / "res"
    assert main(["retrieval", *flags, "--results", str(results)]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not results.exists()


def test_integer_flags_take_lists_deduplicated_and_refuse_ranges(tmp_path) -> None:
    from bench.cli import build_parser
    from bench.commands.retrieval import build_plan

    args = build_parser().parse_args([
        "retrieval", "--impl", "numpy", "--candidates", "3000,2000,3000", "--dim", "8,10,9",
        "--k", "10", "--batch", "1,1", "--results", str(tmp_path / "res")])
    plan = build_plan(args)
    assert (plan.candidates, plan.dims, plan.ks, plan.batches) == ((2000, 3000), (8, 10, 9),
                                                                   (10,), (1,))
    # Sizes take no a-b ranges: 10000-1000000 would be 990,001 data sets, not a typo caught.
    args.candidates = "10000-1000000"
    with pytest.raises(UsageError, match="--candidates: expected an integer, or a comma list"):
        build_plan(args)


def test_results_path_that_is_a_file_is_refused(tmp_path, capfd) -> None:
    bad = tmp_path / "file"
    bad.write_text("x")
    assert main(["retrieval", "--impl", "numpy", "--results", str(bad)]) == 2
    assert "not a directory" in capfd.readouterr().err


def test_list_names_every_contender(capfd) -> None:
    assert main(["retrieval", "--list"]) == 0
    out = capfd.readouterr().out
    for name in ("numpy", "faiss-flat", "faiss-ivf", "jax-blocked", "keras-torch-compile"):
        assert name in out


def _cli(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", "retrieval", *flags], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_numpy_and_jax_study_end_to_end(tmp_path) -> None:
    """Exact contenders hit recall 1.0, records are stored, the report section is written."""
    if importlib.util.find_spec("jax") is None:  # found, not imported: this process stays free
        pytest.skip("needs jax")
    results = tmp_path / "res"
    proc = _cli("--candidates", "2000", "--dim", "16", "--k", "10", "--batch", "1,50",
                "--impl", "numpy,jax,jax-blocked", "--repeats", "3", "--budget", "0.1",
                "--results", str(results))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = list(ResultsStore(results).iter_dicts())
    assert {(r["impl"], r["spec"]["batch"]) for r in records} == {
        (i, b) for i in ("numpy", "jax", "jax-blocked") for b in (1, 50)}
    for r in records:
        assert r["status"] == "ok" and r["figures"]["recall"] == 1.0, r
        assert r["impl_info"]["versions"]
    assert "dim 16, k 10: QPS at batch 50" in proc.stdout
    section = (results / "retrieval.md").read_text()
    assert "### dim 16, k 10" in section
    assert "python -m bench retrieval --candidates 2000" in section
    assert (results / "plots" / "retrieval-latency-d16-k10.png").stat().st_size > 1000


def test_profile_numpy_phases(tmp_path) -> None:
    """The profile splits numpy's search into matmul and top-k (one subprocess, no framework)."""
    from bench.studies import retrieval_profile as profile

    out = tmp_path / "profile.md"
    assert profile.main(["--impl", "numpy,faiss-flat", "--candidates", "3000", "--dim", "8",
                         "--k", "10", "--batch", "20", "--calls", "2", "--out", str(out)]) == 0
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in
            out.read_text().splitlines() if line.startswith("| numpy") or
            line.startswith("| faiss")}
    assert set(rows) == {"numpy", "faiss-flat"}
    assert rows["numpy"][2] == "-" and rows["numpy"][3] != "-" and rows["numpy"][4] != "-"
    assert rows["faiss-flat"][3] == "-"  # one opaque call: no phases
