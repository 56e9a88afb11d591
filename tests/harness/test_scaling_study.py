"""The scaling study's driver: its plan, and one tiny sweep end to end (resumable)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report.scaling import COMMANDS_FILE
from bench.studies import scaling

FAKE = "tests.harness.fake_impl:FakeImpl"


def test_plan_covers_the_documented_grid() -> None:
    sweeps = scaling.plan("a,b,c,d")
    a = [(s.ratings, s.users, s.movies) for s in sweeps if s.part == "a"]
    b = [(s.ratings, s.users, s.movies) for s in sweeps if s.part == "b"]
    assert a == [(100_000, 1_000, 1_000), (1_000_000, 10_000, 10_000),
                 (10_000_000, 100_000, 100_000)]
    assert b == [(1_000_000, u, 10_000) for u in (1_000, 100_000, 1_000_000)]
    (c,) = [s for s in sweeps if s.part == "c"]
    assert c.dataset == "ml-1m" and c.seeds == "0,1,2"
    argv = sweeps[2].argv(["jax"], Path("r"), Path("emb"))
    assert "--save-embeddings" not in argv and "--steps-per-epoch" in argv and "--resume" in argv
    # d: one whole-epoch run on the 100,000-movie workload, the only one exporting embeddings.
    (d,) = scaling.plan("d")
    argv = d.argv(["jax-sparse"], Path("r"), Path("emb"))
    assert d.movies == 100_000 and "--save-embeddings" in argv
    assert "--steps-per-epoch" not in argv


def test_dry_run_prints_the_plan_and_an_estimate(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    assert scaling.main(["--dry-run", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "estimated" in out and "--dataset ml-1m" in out
    assert not (tmp_path / "r").exists()


def test_bad_part_is_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        scaling.main(["--part", "a,x", "--dry-run"])
    assert exc.value.code == 2


def test_one_tiny_sweep_end_to_end_and_resumed(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    flags = ("--depth", "1", "--epochs", "2", "--batch-size", "500", "--steps-per-epoch", "2",
             "--retrieve-seconds", "0.05")
    tiny = scaling.Sweep("d", "tests.fixtures:make_dataset", 2500, 50, 100_000, "0", flags)
    monkeypatch.setattr(scaling, "plan", lambda parts: [tiny])
    results, emb = tmp_path / "scaling", tmp_path / "emb"
    argv = ["--impl", FAKE, "--results", str(results), "--embeddings", str(emb),
            "--logs", str(tmp_path / "logs")]
    assert scaling.main(argv) == 0
    assert scaling.main(argv) == 0  # --resume: nothing runs twice
    records = [json.loads(line) for line in (results / "records.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["spec"]["steps_per_epoch"] == 2
    assert records[0]["figures"]["train_steps_per_epoch"] == 2
    commands = (results / COMMANDS_FILE).read_text().splitlines()
    assert len(commands) == 1 and commands[0].startswith("python -m bench run --impl ")
    assert (emb / records[0]["run_id"] / "meta.json").is_file()
