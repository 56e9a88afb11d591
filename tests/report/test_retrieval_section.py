"""kind="retrieval" records go to bench.retrieval.report.write_section, and its text into README."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from bench.cli import main
from tests.report.records import study, write_study


def _fake_section_module(monkeypatch, calls: list) -> None:
    module = types.ModuleType("bench.retrieval.report")

    def write_section(records, out_dir: Path, command=None) -> str:
        calls.append(([r["run_id"] for r in records], out_dir))
        return "## Top-k retrieval at scale\n\nFAKE SECTION\n"

    module.write_section = write_section  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.retrieval.report", module)


def test_retrieval_records_are_handed_over_and_embedded(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    _fake_section_module(monkeypatch, calls)
    recs = study({"keras-jax": [0.3]}) + [{"run_id": "r1", "kind": "retrieval", "status": "ok"}]
    results = write_study(tmp_path / "r", recs)
    assert main(["report", "--no-plots", "--results", str(results)]) == 0
    assert calls == [(["r1"], results)]
    text = (results / "README.md").read_text()
    assert "FAKE SECTION" in text
    assert "1 record(s) of kind 'retrieval'" in text


def test_no_retrieval_records_no_call(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    _fake_section_module(monkeypatch, calls)
    results = write_study(tmp_path / "r", study({"keras-jax": [0.3]}))
    assert main(["report", "--no-plots", "--results", str(results)]) == 0
    assert calls == []
    assert "No retrieval-at-scale records" in (results / "README.md").read_text()
