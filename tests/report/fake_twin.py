"""A second numpy "implementation" for end-to-end report tests: FakeImpl under another name.

Same numerics as tests/harness/fake_impl.py, so the report must find the two
equivalent; `--impl tests.report.fake_twin:FakeTwin` runs it in a worker.
"""

from __future__ import annotations

from tests.harness.fake_impl import FakeImpl


class FakeTwin(FakeImpl):
    """FakeImpl, registered under a different name."""
