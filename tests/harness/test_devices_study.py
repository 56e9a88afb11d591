"""The data-parallel study's driver: its plan, and --quick end to end through the real CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import registry
from bench.cli import main as bench_main
from bench.report.scaling import COMMANDS_FILE
from bench.studies import devices as study

PARALLEL = [i for i in registry.PRIMARY if i in registry.DATA_PARALLEL]
REFUSING = [i for i in registry.PRIMARY if i not in registry.DATA_PARALLEL]


def _flag(argv: tuple[str, ...], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_full_plan_covers_every_primary_at_one_two_and_four_devices() -> None:
    commands = study.plan(study.FULL, list(registry.PRIMARY), Path("r"), None)
    runs = [c.argv for c in commands if c.argv[0] == "run" and not c.refused]
    one, *many = runs
    assert (_flag(one, "--impl"), _flag(one, "--devices"), _flag(one, "--batch-size")) \
        == (",".join(registry.PRIMARY), "1", "1000")
    # Strong (global 1000) and weak (per device 1000) at each N, in one command per N.
    assert [(_flag(a, "--devices"), _flag(a, "--batch-size"), _flag(a, "--impl")) for a in many] \
        == [("2", "1000,2000", ",".join(PARALLEL)), ("4", "1000,4000", ",".join(PARALLEL))]
    assert all(_flag(a, "--dataset") == "ml-100k" and _flag(a, "--depth") == "1"
               and "--resume" in a for a in runs)
    refused = [(_flag(c.argv, "--impl"), _flag(c.argv, "--devices")) for c in commands
               if c.refused]
    assert refused == [(i, n) for n in ("2", "4") for i in REFUSING]
    parity = commands[-1].argv
    assert parity[0] == "parity" and _flag(parity, "--devices") == "2,4"
    assert _flag(parity, "--impl") == ",".join(PARALLEL) and _flag(parity, "--results") == "r"
    assert sum(c.estimate_s for c in commands) < 30 * 60  # the study's budget on this machine


def test_dry_run_prints_the_plan_and_runs_nothing(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    assert study.main(["--dry-run", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "estimated" in out and "--devices 2,4" in out and "(to be refused)" in out
    assert not (tmp_path / "r").exists()


def test_unknown_implementation_is_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        study.main(["--impl", "jax,nope", "--dry-run"])
    assert exc.value.code == 2


@pytest.mark.slow  # 30-60 s on this machine: five runs and two parity workers
@pytest.mark.skipif(not (registry.get("jax").installed() and REFUSING),
                    reason="needs jax, and a primary implementation that refuses --devices")
def test_quick_study_end_to_end_and_its_report(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """jax on one and two simulated devices, a refusal, 1-vs-2 parity; then the report."""
    results, refusing = tmp_path / "r", REFUSING[0]
    argv = ["--quick", "--impl", f"jax,{refusing}", "--results", str(results),
            "--logs", str(tmp_path / "logs"), "--cache-dir", str(tmp_path / "cache")]
    assert study.main(argv) == 0
    records = [json.loads(line) for line in (results / "records.jsonl").read_text().splitlines()]
    got = sorted((r["impl"], r["spec"].get("devices", 1), r["spec"]["batch_size"], r["status"])
                 for r in records)
    assert got == sorted([("jax", 1, 200, "ok"), (refusing, 1, 200, "ok"),
                          ("jax", 2, 200, "ok"), ("jax", 2, 400, "ok")])
    parity = json.loads((results / "devices_parity.json").read_text())
    assert [(p["impl"], p["verdict"]) for p in parity["pairs"]] == [("jax x2", "equivalent")]
    lines = (results / COMMANDS_FILE).read_text().splitlines()
    assert len(lines) == 5 and lines[3].startswith(f"# refused (exit 2): error: --devices 2: "
                                                   f"{refusing}:")
    capsys.readouterr()
    assert bench_main(["report", "--results", str(results), "--no-plots", "--check"]) == 0
    text = (results / "README.md").read_text()
    assert "## Data parallel: N devices against one" in text
    assert "| jax | 2 | 200 | 100 | 1 / 1 |" in text  # strong: global 200, 100 per device
    assert "| jax | 2 | 200 | 400 | 1 / 1 |" in text  # weak: 200 per device, global 400
    assert f"| {refusing} | – | – | **refused** |" in text
    assert not any(m in sys.modules for m in ("jax", "torch", "tensorflow", "keras"))
