"""Retrieval-at-scale records go to bench.retrieval.report.write_section; README links it."""

from __future__ import annotations

from pathlib import Path

from bench.cli import main
from bench.report import files
from tests.report.records import study, write_study

RETRIEVAL = {"kind": "retrieval", "status": "ok"}


def _fake_section(monkeypatch, calls: list) -> None:
    def write_section(records, out_dir: Path, command=None) -> str:
        calls.append((sorted(r["run_id"] for r in records), out_dir))
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "retrieval.md").write_text("FAKE SECTION\n")
        return "FAKE SECTION\n"

    monkeypatch.setattr(files, "write_section", write_section)


def test_retrieval_records_from_both_stores_are_handed_over(tmp_path: Path,
                                                            monkeypatch) -> None:
    calls: list = []
    _fake_section(monkeypatch, calls)
    results = write_study(tmp_path / "r", study({"keras-jax": [0.3]})
                          + [{"run_id": "in-runs", **RETRIEVAL}])
    retrieval = write_study(tmp_path / "ret", [{"run_id": "in-ret", **RETRIEVAL}])
    out = tmp_path / "out"
    assert main(["report", "--no-plots", "--results", str(results), "--out", str(out),
                 "--retrieval-results", str(retrieval)]) == 0
    ((ids, section_dir),) = calls  # written in the report's private folder, then moved
    assert ids == ["in-ret", "in-runs"] and section_dir.name == "retrieval"
    assert section_dir.parent.parent == out and (out / "retrieval" / "retrieval.md").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".report-")]
    text = (out / "README.md").read_text()
    assert "2 retrieval record(s)" in text and "(retrieval/retrieval.md)" in text
    assert "1 record(s) of kind 'retrieval'" in text  # the one among training records


def test_no_retrieval_records_no_call(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    _fake_section(monkeypatch, calls)
    results = write_study(tmp_path / "r", study({"keras-jax": [0.3]}))
    assert main(["report", "--no-plots", "--results", str(results)]) == 0
    assert calls == []
    assert "No retrieval-at-scale records" in (results / "README.md").read_text()
    assert not (results / "retrieval").exists()


def test_missing_retrieval_store_is_a_usage_error(tmp_path: Path, capsys) -> None:
    results = write_study(tmp_path / "r", study({"keras-jax": [0.3]}))
    assert main(["report", "--results", str(results), "--retrieval-results",
                 str(tmp_path / "nope")]) == 2
    assert "--retrieval-results" in capsys.readouterr().err
    assert not (results / "README.md").exists()
