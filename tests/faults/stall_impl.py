"""A fake implementation that stalls mid-work, for the signal and hang tests.

`--impl tests.faults.stall_impl:StallImpl`: its first train_epoch writes its
pid to the file named by DEEPREC_TEST_STALL_MARK (when set), so a test knows
the worker is busy, and then never returns.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from tests.harness.fake_impl import FakeImpl

MARK_VAR = "DEEPREC_TEST_STALL_MARK"


class StallImpl(FakeImpl):
    """FakeImpl whose training says where it is, then hangs (see the module docstring)."""

    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        if mark := os.environ.get(MARK_VAR):
            Path(mark).write_text(str(os.getpid()))
        while True:
            time.sleep(1)
