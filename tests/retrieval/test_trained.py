"""`bench retrieval --embeddings`: the trained workload, from small arrays written here.

The folder has the format `bench run --save-embeddings` writes (candidates.npy,
queries.npy, meta.json); a clean run through the CLI with two numpy
contenders, bad input refused in one line, and the report keeping the
workloads apart.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.cli import main
from bench.retrieval.contenders import CONTENDERS
from bench.retrieval.records import Setting, build_record
from bench.retrieval.report import render, select
from bench.store import ResultsStore

ROOT = Path(__file__).resolve().parents[2]
META = {"dataset": "synthetic:users=50,movies=300,ratings=3000", "content_hash": "c0ffee",
        "impl": "jax", "spec_hash": "5bec", "run_id": "run-1", "top_k": 100}


def write_embeddings(folder: Path, n: int = 400, rows: int = 60, d: int = 8,
                     meta: Any = META, **arrays: np.ndarray) -> Path:
    """A DIR/<run_id> as `bench run --save-embeddings` writes it; `arrays` replace the default."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    defaults = {"candidates": rng.standard_normal((n, d)).astype(np.float32),
                "queries": rng.standard_normal((rows, d)).astype(np.float32)}
    for name, arr in {**defaults, **arrays}.items():
        np.save(folder / f"{name}.npy", arr)
    if meta is not None:
        (folder / "meta.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return folder


def test_clean_run_two_contenders(tmp_path: Path) -> None:
    """Exact recall, the workload in every record, its own report section and plot."""
    emb = write_embeddings(tmp_path / "emb" / "run-1")
    results = tmp_path / "res"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "retrieval", "--embeddings", str(emb), "--k", "5",
         "--batch", "1,20", "--impl", "numpy,numpy-blocked", "--repeats", "2",
         "--min-calls", "1", "--budget", "0.05", "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = list(ResultsStore(results).iter_dicts())
    assert {(r["impl"], r["spec"]["batch"]) for r in records} == {
        (i, b) for i in ("numpy", "numpy-blocked") for b in (1, 20)}
    digest = hashlib.blake2b(digest_size=8)
    for name in ("candidates", "queries"):
        digest.update(np.load(emb / f"{name}.npy").tobytes())
    for r in records:
        assert r["status"] == "ok" and r["figures"]["recall"] == 1.0, r
        assert (r["spec"]["candidates"], r["spec"]["dim"], r["spec"]["num_queries"]) == (400, 8, 20)
        assert r["spec"]["generator"] == "trained" and r["spec"]["seed"] is None
        assert r["spec"]["workload"] == {"kind": "trained", "arrays_hash": digest.hexdigest(),
                                         **{k: META[k] for k in ("dataset", "content_hash",
                                                                 "run_id", "impl", "spec_hash")}}
        assert r["dataset"] == {"name": f"trained:{META['dataset']}",
                                "content_hash": digest.hexdigest()}
        assert "--embeddings" in r["command"] and "--candidates" not in r["command"]
    assert "trained embeddings: synthetic:users=50" in proc.stdout
    section = (results / "retrieval.md").read_text()
    assert "No records on random embeddings." in section
    assert "## Top-k retrieval on trained embeddings" in section
    plot = f"retrieval-trained-synthetic-users-50-movies-300-ratings-3000-{digest.hexdigest()[:8]}"
    assert (results / "plots" / f"{plot}-recall-qps-d8-k5.png").stat().st_size > 1000


def _bad_files(root: Path) -> dict[str, tuple[Path, str]]:
    """Broken folders by case: (folder, a fragment of the expected one-line error)."""
    rng = np.random.default_rng(1)
    nan_q = rng.standard_normal((60, 8)).astype(np.float32)
    nan_q[7, 3] = np.nan
    inf_c = rng.standard_normal((400, 8)).astype(np.float32)
    inf_c[300, 0] = np.inf
    file = root / "a-file"
    file.write_text("x")
    cases = {
        "missing": (root / "nope", "no such folder"),
        "file": (file, "not a folder"),
        "no meta": (write_embeddings(root / "m0", meta=None), "no meta.json"),
        "meta key": (write_embeddings(root / "m1", meta={"dataset": "x"}), "lacks content_hash"),
        "meta json": (write_embeddings(root / "m2", meta="{oops"), "not readable JSON"),
        "1-d": (write_embeddings(root / "s0", candidates=np.zeros(5, np.float32)), "shape (5,)"),
        "float64": (write_embeddings(root / "s1", queries=np.zeros((60, 8))), "expected float32"),
        "d": (write_embeddings(root / "s2", queries=np.zeros((60, 9), np.float32)), "d=9"),
        "nan": (write_embeddings(root / "f0", queries=nan_q), "queries.npy row 7"),
        "inf": (write_embeddings(root / "f1", candidates=inf_c), "candidates.npy row 300"),
    }
    garbage = write_embeddings(root / "g0")
    (garbage / "queries.npy").write_bytes(b"not numpy")
    cases["garbage"] = (garbage, "not a readable .npy")
    return cases


CASES = ["missing", "file", "no meta", "meta key", "meta json", "1-d", "float64", "d", "nan",
         "inf", "garbage"]


@pytest.mark.parametrize("case", CASES)
def test_bad_folder_one_line_exit_2_nothing_written(tmp_path: Path, capfd, case: str) -> None:
    folder, fragment = _bad_files(tmp_path)[case]
    before = sorted(tmp_path.rglob("*"))
    results = tmp_path / "res"
    assert main(["retrieval", "--embeddings", str(folder), "--impl", "numpy", "--k", "5",
                 "--batch", "1", "--results", str(results)]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("flags, fragment", [
    (["--candidates", "1000"], "--candidates cannot be given with --embeddings"),
    (["--dim", "8"], "--dim cannot be given with --embeddings"),
    (["--k", "500"], "--k 500 exceeds the candidates of --embeddings 400"),
    (["--batch", "61"], "--batch 61 exceeds the 60 query rows"),
])
def test_flags_that_clash_with_the_files(tmp_path: Path, capfd, flags: list[str],
                                         fragment: str) -> None:
    emb = write_embeddings(tmp_path / "emb")
    results = tmp_path / "res"
    assert main(["retrieval", "--embeddings", str(emb), "--impl", "numpy",
                 *(["--k", "5"] if "--k" not in flags else []),
                 *(["--batch", "1"] if "--batch" not in flags else []), *flags,
                 "--results", str(results)]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert not results.exists()


def _rec(workload: dict[str, Any] | None, started: str, qps: float) -> dict[str, Any]:
    seed, generator = (None, "trained") if workload else (0, "gaussian-mixture-v1")
    setting = Setting(1000, 32, 10, 100, {}, seed, 100, generator, workload)
    rec = build_record(CONTENDERS["numpy"], setting, status="ok", content_hash="h",
                       started_at=started, figures={"qps": qps, "p50_ms": 1.0, "recall": 1.0},
                       context={"environment": {"cpu_model": "Test CPU"}, "invocation": "i"})
    return rec


def test_random_spec_unchanged_and_workloads_kept_apart() -> None:
    """A random spec has no workload key (old spec hashes stand); a newer trained record
    neither joins nor knocks out the random records, and gets its own section."""
    random = _rec(None, "2026-01-01T00:00:00Z", 100.0)
    assert "workload" not in random["spec"] and random["dataset"]["name"].startswith("synthetic")
    trained = _rec({"kind": "trained", "dataset": "ml-1m", "content_hash": "c", "run_id": "r",
                    "impl": "jax", "spec_hash": "s", "arrays_hash": "0123456789abcdef"},
                   "2026-02-01T00:00:00Z", 50.0)
    assert trained["spec_hash"] != random["spec_hash"]
    assert select([random, trained]) == ([random], {})
    text = render([random, trained])
    assert text.index("## Top-k retrieval at scale") < text.index("### dim 32, k 10") < \
        text.index("## Top-k retrieval on trained embeddings") < text.index("### ml-1m")
    assert "| numpy | 1.0000 | 1.0000 | 100.0 | 50.0 |" in text  # beside the random one
    assert render([random]) == render([random, {"kind": "training"}])
    assert "trained" not in render([random])
