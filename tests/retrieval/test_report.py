"""The report section from records alone (no worker, no framework)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.retrieval.contenders import CONTENDERS
from bench.retrieval.records import Setting, build_record
from bench.retrieval.report import SECTION_FILE, render, summary_text, write_section


def _rec(name: str, n: int, batch: int, qps: float, recall: float = 1.0,
         params: dict[str, Any] | None = None, status: str = "ok",
         invocation: str | None = "run-1", cpu: str = "Test CPU",
         resolved: dict[str, Any] | None = None) -> dict[str, Any]:
    setting = Setting(n, 32, 100, batch, params or {}, 0, 1000, "gaussian-mixture-v1")
    figures = {"qps": qps, "p50_ms": 1000 * batch / qps, "p95_ms": 1100 * batch / qps,
               "p99_ms": 1200 * batch / qps, "calls": 3, "recall": recall, "recall_ids": recall,
               "peak_rss_delta_mb": n * batch * 4 / 2**20, "first_call_s": 0.5}
    built = {"build_s": 0.1, "index_rss_mb": n * 32 * 4 / 2**20, "versions": {"x": "1"}}
    if resolved is not None:
        figures["resolved_options"] = resolved
    return build_record(CONTENDERS[name], setting, status=status, content_hash="abc",
                        figures=figures if status == "ok" else None, built=built,
                        context={"command": "python -m bench retrieval --candidates 1000,100000",
                                 "invocation": invocation,
                                 "environment": {"cpu_model": cpu, "cpu_count_logical": 2}})


def _records() -> list[dict[str, Any]]:
    recs = []
    for n in (1000, 100000):
        for batch in (1, 1000):
            scale = 1000 / n * batch ** 0.5
            recs += [_rec("faiss-flat", n, batch, 4000 * scale),
                     _rec("jax", n, batch, 3000 * scale), _rec("numpy", n, batch, 1000 * scale)]
            recs += [_rec("faiss-ivf", n, batch, q * scale, recall=r, params={"nprobe": p})
                     for p, q, r in ((1, 40000, 0.3), (16, 9000, 0.8), (64, 5000, 0.97))]
    recs.append(_rec("torch", 100000, 1000, 1.0, status="failed"))
    return recs


def test_section_tables_ratios_and_plots(tmp_path: Path) -> None:
    text = write_section(_records(), tmp_path)
    assert (tmp_path / SECTION_FILE).read_text() == text
    assert "### dim 32, k 100" in text
    assert "python -m bench retrieval --candidates 1000,100000" in text
    # QPS pivot at the largest batch: one column per candidate count.
    assert "| contender | N=1,000 | N=100,000 |" in text
    # Ratios at the largest N and batch against faiss-flat: jax 0.75 (within 1.5x), numpy 0.25.
    assert "| jax | yes | 948.7 | 0.75 | within 1.5x |" in text
    assert "| numpy | yes | 316.2 | 0.25 | slower |" in text
    assert "| torch | yes | - | failed | - |" in text
    assert "faiss-ivf nprobe=16" in text and "(r=0.800)" in text
    assert "At N=100,000, batch 1000 (same run):" in text
    for png in ("retrieval-latency-d32-k100.png", "retrieval-recall-qps-d32-k100.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 5000
        assert f"(plots/{png})" in text


def test_same_records_same_bytes_and_latest_record_wins(tmp_path: Path) -> None:
    recs = _records()
    write_section(recs, tmp_path / "a")
    write_section(recs, tmp_path / "b")
    for name in ("retrieval.md", "plots/retrieval-latency-d32-k100.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rerun = _rec("torch", 100000, 1000, 50.0)  # the same spec, now ok: it replaces the failure
    assert "| torch | yes | 50.0 | 0.04 | slower |" in render([*recs, rerun])


def test_no_retrieval_records_and_summary() -> None:
    assert "No retrieval records" in render([{"kind": "train", "spec_hash": "x"}])
    text = summary_text(_records())
    assert "dim 32, k 100: QPS at batch 1000" in text and "1 not ok" in text


def test_other_machines_are_left_out_and_never_the_reference() -> None:
    recs = _records()
    other = _rec("faiss-flat", 100000, 1000, 1.0, cpu="Other CPU")
    other["started_at"] = "2000-01-01T00:00:00+00:00"  # older: the newest record decides
    text = render([*recs, other])
    assert "Left out: 1 record(s) from another machine" in text
    assert "| jax | yes | 948.7 | 0.75 | within 1.5x |" in text  # still against this machine's


def test_ratios_from_mixed_runs_say_so() -> None:
    recs = _records()
    recs.append(_rec("jax", 100000, 1000, 2000.0, invocation="run-2"))
    assert "(from more than one run: compare with care)" in render(recs)


def test_clamped_params_and_near_one_recall_are_flagged() -> None:
    recs = _records()
    recs.append(_rec("faiss-ivf", 100000, 1000, 10.0, recall=0.9995, params={"nprobe": 512},
                     resolved={"nprobe": 42, "nlist": 42}))
    text = render(recs)
    assert "10.0 (r=0.999) (nprobe ran 42)" in text
