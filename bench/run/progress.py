"""The sweep's progress bar: run i of n, epoch e of E, loss, ETA (tqdm, on stderr).

The bar counts epochs over the whole sweep, so tqdm's ETA covers every run
still to come. One line per finished run is written above the bar.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from bench.run.sweep import Run


class SweepProgress:
    """A runner listener (bench/run/runner.py) that drives one tqdm bar.

    Args:
        runs: the runs that will actually start (resume skips excluded).
        enabled: False for no bar (the per-run lines are still written).
    """

    def __init__(self, runs: list[Run], enabled: bool = True) -> None:
        self.total_runs = len(runs)
        self.bar = tqdm(
            total=sum(r.spec.epochs for r in runs),
            unit="epoch",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
            # The average rate over the whole sweep: build, compilation and retrieval
            # time between epochs then count in the ETA, not only the epochs.
            smoothing=0,
        )
        self.index = 0
        self.epochs_done = 0
        self.run: Run | None = None

    def __call__(self, event: str, run: Run, fields: dict[str, Any]) -> None:
        if event == "start":
            self.index += 1
            self.run, self.epochs_done = run, 0
            self.bar.set_description(f"run {self.index}/{self.total_runs} {run.spec.impl}")
            self.bar.set_postfix_str("starting")
        elif event == "phase":
            self.bar.set_postfix_str(str(fields.get("phase")))
        elif event == "epoch":
            self._epoch(run, fields)
        elif event == "end":
            self._end(run, fields)

    def _epoch(self, run: Run, fields: dict[str, Any]) -> None:
        self.bar.update(1)
        self.epochs_done += 1
        loss = fields.get("loss")
        text = f"epoch {fields.get('epoch')}/{run.spec.epochs}"
        if loss is not None:
            text += f" loss {loss:.4f}"
        if fields.get("accuracy") is not None:
            text += f" top100 {fields['accuracy']:.3f}"
        self.bar.set_postfix_str(text)

    def _end(self, run: Run, record: dict[str, Any]) -> None:
        # Runs that ended early still count all their epochs, so the ETA stays honest.
        if run is self.run:
            self.bar.update(max(0, run.spec.epochs - self.epochs_done))
            self.epochs_done = run.spec.epochs
        duration = record.get("duration_s")
        took = f" in {duration:.1f} s" if duration is not None else ""
        self.bar.write(f"{run.label()}: {record.get('status')}{took}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
