"""The summary table and the progress bar, fed records and events directly."""

from __future__ import annotations

import pytest

from bench.record import RunRecord, new_run_id
from bench.run import sweep
from bench.run.progress import SweepProgress
from bench.run.summary import check_warnings, failures, format_table, headline


def _record(status: str, error: str | None = None, **figures: float) -> RunRecord:
    return RunRecord(
        run_id=new_run_id(), status=status, impl="keras-jax",
        spec={"layer_sizes": [128, 64, 32], "seed": 3}, spec_hash="h", repeat=0,
        dataset={"name": "ml-100k", "content_hash": "c"}, started_at="t", duration_s=12.0,
        error=error, figures=dict(figures),
    )


def test_table_has_a_row_per_record_and_dashes_for_missing_figures() -> None:
    table = format_table([
        _record("ok", top100_accuracy_impl=0.3012, top100_accuracy_numpy=0.3013,
                compile_s=4.5, train_epoch_s=0.4567),
        _record("timed out", error="timed out after 5 s"),
    ])
    header, rule, ok, timed_out = table.splitlines()
    assert "top100 numpy" in header and set(rule) <= {"-", " "}
    assert "128,64,32" in ok and "0.3013" in ok and "4.50" in ok and "0.457" in ok
    assert "timed out" in timed_out and " - " in timed_out
    assert len(format_table([]).splitlines()) == 2


def test_failure_headlines() -> None:
    tb = "Traceback (most recent call last):\n  File x\nRuntimeError: boom"
    assert headline(tb) == "RuntimeError: boom"
    assert headline("worker killed by SIGSEGV\nFatal Python error") == "worker killed by SIGSEGV"
    text = failures([_record("ok"), _record("failed", error=tb)])
    assert text == "keras-jax seed 3: failed: RuntimeError: boom"


def test_progress_counts_every_epoch_even_of_runs_that_end_early(
    capsys: pytest.CaptureFixture[str],
) -> None:
    entries = sweep.resolve_impls("tests.harness.fake_impl:FakeImpl")
    runs = sweep.expand(entries, [(32,)], [0, 1], repeats=1, epochs=3)
    progress = SweepProgress(runs, enabled=True)
    progress("start", runs[0], {})
    progress("epoch", runs[0], {"epoch": 1, "loss": 0.5, "accuracy": None})
    progress("end", runs[0], {"status": "failed", "duration_s": 1.0})  # died in epoch 2
    progress("start", runs[1], {})
    for e in (1, 2, 3):
        progress("epoch", runs[1], {"epoch": e, "loss": 0.4, "accuracy": 0.2})
    progress("end", runs[1], {"status": "ok", "duration_s": 2.0})
    assert progress.bar.n == progress.bar.total == 6
    progress.close()
    err = capsys.readouterr().err
    assert "seed 0 rep 0: failed in 1.0 s" in err and "seed 1 rep 0: ok in 2.0 s" in err


def test_overhead_and_accuracy_gaps_are_warned_about() -> None:
    fine = _record("ok", harness_overhead_ratio=1.01, top100_accuracy_abs_diff=0.0)
    slow = _record("ok", harness_overhead_ratio=1.2, top100_accuracy_abs_diff=0.0)
    apart = _record("ok", harness_overhead_ratio=1.0, top100_accuracy_abs_diff=0.02,
                    top100_accuracy_impl=0.30, top100_accuracy_numpy=0.28)
    assert check_warnings([fine]) == ""
    text = check_warnings([fine, slow, apart]).splitlines()
    assert len(text) == 2
    assert "1.200x" in text[0] and "0.3000 vs numpy 0.2800" in text[1]
