"""Ad-hoc runs land in the git-ignored results/local, never in the committed studies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import paths
from bench.cli import build_parser, main
from bench.report import files
from tests.report.records import study, write_study

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("argv", "expected"), [
    (["run"], paths.LOCAL_RUNS),
    (["parity"], paths.LOCAL_RUNS),
    (["retrieval"], paths.LOCAL_RETRIEVAL),
    (["report"], paths.STUDY_RUNS),
])
def test_default_results_dirs(argv: list[str], expected: Path) -> None:
    assert Path(build_parser().parse_args(argv).results) == expected


def test_local_store_is_git_ignored_and_studies_are_not() -> None:
    def ignored(path: Path) -> bool:
        proc = subprocess.run(["git", "check-ignore", "-q", str(path / "records.jsonl")],
                              cwd=ROOT, check=False)
        return proc.returncode == 0

    assert ignored(paths.LOCAL_RUNS) and ignored(paths.LOCAL_RETRIEVAL)
    assert not ignored(paths.STUDY_RUNS) and not ignored(paths.STUDY_RETRIEVAL)


def test_report_on_a_local_store_includes_its_retrieval_records(tmp_path: Path,
                                                                monkeypatch) -> None:
    calls: list = []

    def write_section(records, out_dir: Path, command=None) -> str:
        calls.append((sorted(r["run_id"] for r in records), out_dir))
        return "FAKE SECTION\n"

    monkeypatch.setattr(files, "write_section", write_section)
    local = write_study(tmp_path / "local", study({"keras-jax": [0.3]}))
    write_study(local / "retrieval", [{"run_id": "ret-1", "kind": "retrieval", "status": "ok"}])
    assert main(["report", "--no-plots", "--results", str(local)]) == 0
    # Written in report's private folder inside `local`, then moved into place (all or nothing).
    (ids, out_dir), = calls
    assert ids == ["ret-1"] and out_dir.name == "retrieval" and out_dir.parent.parent == local
