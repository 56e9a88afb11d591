"""A fake for the Ray executor's tests: a run that hangs while a gate file exists.

The test names the gate in DEEPREC_TEST_HANG_GATE before it starts the cluster
(Ray's workers, and so the runs' workers, inherit it). A run that reaches epoch
FAULT_EPOCH while the gate exists writes its pid to `<gate>.pid` and hangs; once
the test removes the gate, the same run (a --resume) completes like FakeImpl.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.harness.fake_impl import FAULT_EPOCH, FakeImpl

GATE_VAR = "DEEPREC_TEST_HANG_GATE"


class GatedHangImpl(FakeImpl):
    """FakeImpl that never returns from epoch FAULT_EPOCH while the gate file exists."""

    def fault(self) -> None:
        gate = os.environ.get(GATE_VAR, "")
        if self.epoch == FAULT_EPOCH and gate and Path(gate).exists():
            Path(f"{gate}.pid").write_text(str(os.getpid()))
            while True:
                time.sleep(1)
