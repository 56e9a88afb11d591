"""`python -m bench run` end to end on the numpy fake: records, summary, resume, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import envinfo
from bench.cli import main
from bench.envinfo import machine_label
from bench.record import SCHEMA_VERSION
from bench.spec import RunSpec
from tests.harness.conftest import DATASET, ROOT, bench_run, fake_args, read_lines


def test_a_run_records_every_phase_and_prints_the_summary(results: Path) -> None:
    out = bench_run(*fake_args("FakeImpl", epochs=4, extra=("--seed", "0-1")), results=results)
    assert out.returncode == 0, out.stderr
    records = read_lines(results)
    assert [r["spec"]["seed"] for r in records] == [0, 1]
    rec = records[0]
    assert rec["schema_version"] == SCHEMA_VERSION and rec["status"] == "ok"
    assert rec["spec_hash"] == RunSpec.from_dict(rec["spec"]).spec_hash()
    assert rec["dataset"]["content_hash"] and rec["git"]["commit"]
    assert rec["environment"]["packages"]["numpy"]
    assert rec["impl_info"]["sync_mechanism"]
    assert rec["spec"]["device"] == ("gpu" if envinfo.has_gpu() else "cpu")  # auto, resolved
    assert rec["environment"]["worker_env"].get("JAX_PLATFORMS") == rec["spec"]["device"].replace(
        "gpu", "cuda")
    f = rec["figures"]
    for name in ("cache_load_s", "build_s", "first_epoch_s", "compile_s", "train_epoch_s",
                 "train_step_ms", "train_examples_per_s", "refresh_s", "evaluate_s",
                 "retrieve_p50_ms_b1", "retrieve_p99_ms_b1000", "retrieve_qps_b100",
                 "peak_rss_mb"):
        assert f[name] is not None, name
    assert f["steady_epochs"] == 3 and f["train_steps_per_epoch"] == 4
    assert f["train_epoch_min_s"] <= f["train_epoch_s"] <= f["train_epoch_max_s"]
    assert f["harness_overhead_ratio"] >= 1.0  # the harness brackets the impl's loop
    curve = rec["curve"]
    assert curve["epoch"] == [1, 2, 3, 4] and curve["val_epoch"] == [2, 4]
    assert curve["epoch_loss"][-1] < curve["epoch_loss"][0]  # it really trains
    # Impl metric and numpy agree on the exported embeddings, and are informative.
    assert f["top100_accuracy_impl"] == pytest.approx(f["top100_accuracy_numpy"])
    assert 0.0 < f["top100_accuracy_numpy"] < 1.0
    assert f["retrieve_agreement"] == pytest.approx(1.0)
    assert f["retrieve_identical_share"] == pytest.approx(1.0)
    assert set(rec["retrieval"]) == {"1", "100", "1000"}
    assert "top100 numpy" in out.stdout and out.stdout.count("FakeImpl") == 2


def test_resume_skips_runs_recorded_ok(results: Path) -> None:
    first = bench_run(*fake_args("FakeImpl", "RaisingImpl", epochs=2), results=results)
    assert first.returncode == 1  # a run failed
    assert "2 run(s), 2 to do" in first.stderr  # no --resume: nothing said of it
    assert [r["status"] for r in read_lines(results)] == ["ok", "failed"]
    again = bench_run(*fake_args("FakeImpl", "RaisingImpl", epochs=2, extra=("--resume",)),
                      results=results)
    records = read_lines(results)
    assert [r["status"] for r in records] == ["ok", "failed", "failed"]  # only the failure reran
    assert records[2]["impl"].endswith("RaisingImpl")
    assert "1 already recorded ok" in again.stderr
    assert "another machine" not in again.stderr  # all recorded here


def test_resume_says_when_it_skips_runs_recorded_only_on_another_machine(
        results: Path) -> None:
    args = fake_args("FakeImpl", epochs=2, extra=("--seed", "0-1"))
    assert bench_run(*args, results=results).returncode == 0
    path = results / "records.jsonl"
    here = [json.loads(line) for line in path.read_text().splitlines()]
    moved = [{**r, "environment": {**r["environment"], "cpu_model": "Elsewhere CPU"}}
             for r in here]
    # Seed 0 only elsewhere; seed 1 both here and elsewhere (this machine's group has it).
    path.write_text("".join(json.dumps(r) + "\n" for r in [moved[0], here[1], moved[1]]))
    again = bench_run(*args, "--resume", results=results)
    assert again.returncode == 0 and len(read_lines(results)) == 3  # both still skipped
    cpu, gpu = machine_label(moved[0]["environment"])
    assert cpu.startswith("Elsewhere CPU (")
    assert (f"note: --resume skips 1 run(s) recorded only on another machine ({cpu}, GPU {gpu}: "
            "1)") in again.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--impl", "keras-jaxx"], "did you mean 'keras-jax'"),
        (["--depth", "0"], "--depth must be >= 1"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--batch-size", "5000"], "larger than the training set"),
        (["--seed", "a"], "--seed"),
        (["--timeout", "0"], "--timeout must be > 0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    results: Path, flags: list[str], message: str
) -> None:
    args = fake_args("FakeImpl") + flags  # later flags win in argparse
    out = bench_run(*args, results=results)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("error: ")
    assert not results.exists()


def test_results_dir_that_cannot_be_created_is_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = bench_run(*fake_args("FakeImpl"), results=blocker / "runs")
    assert out.returncode == 2 and "not writable" in out.stderr
    assert blocker.read_text() == ""


@pytest.mark.skipif(envinfo.has_gpu(), reason="a GPU is present here")
def test_device_gpu_without_a_gpu_is_exit_2(results: Path) -> None:
    out = bench_run(*fake_args("FakeImpl", extra=("--device", "gpu")), results=results)
    assert out.returncode == 2 and "no GPU" in out.stderr
    assert not results.exists()


def test_the_parent_never_imports_a_framework(results: Path) -> None:
    # Real registry names resolved (require_installed) and a fake run completed,
    # all in one parent process whose modules are then listed.
    argv = ["run", *fake_args("FakeImpl", epochs=2), "--results", str(results)]
    code = (
        "import sys; from bench.cli import main; from bench.run import sweep; "
        "sweep.resolve_impls('all'); "
        f"rc = main({argv!r}); "
        "mods = sorted({m.split('.')[0] for m in sys.modules} "
        "& {'jax', 'jaxlib', 'torch', 'tensorflow', 'keras', 'keras_rs'}); "
        "print('RESULT', rc, mods)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert "RESULT 0 []" in out.stdout, out.stdout + out.stderr
    assert len(read_lines(results)) == 1


def test_dataset_hook_is_numpy_only() -> None:
    # The fake dataset factory the tests pass as --dataset is itself importable here.
    from tests.harness.fake_data import medium

    assert DATASET.endswith(":medium") and len(medium().train) == 2000


def test_one_epoch_has_no_steady_state_figures(results: Path) -> None:
    out = bench_run(*fake_args("FakeImpl", epochs=1), results=results)
    assert out.returncode == 0, out.stderr
    (rec,) = read_lines(results)
    f = rec["figures"]
    assert f["first_epoch_s"] is not None and f["steady_epochs"] == 0
    assert f["compile_s"] is None and f["train_epoch_s"] is None and f["train_step_ms"] is None
    assert f["top100_accuracy_impl"] is not None and rec["curve"]["val_epoch"] == [1]


def test_dry_run_lists_the_sweep_and_writes_nothing(results: Path) -> None:
    out = bench_run(*fake_args("FakeImpl", "RaisingImpl", extra=("--seed", "0-2", "--dry-run")),
                    results=results)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 6 and "FakeImpl [32] seed 2 rep 0" in out.stdout
    assert not results.exists()


def test_an_interrupted_command_says_so_and_exits_130(monkeypatch) -> None:
    from bench.commands import report

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "run", interrupted)
    assert main(["report"]) == 130
