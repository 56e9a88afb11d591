"""Suite-wide guard: no test may leave the pytest process deaf to Ctrl-C.

In-process tests drive `bench.process.signals_deferred` and `interruptible`
with real signals. If one of them left SIGINT or SIGTERM blocked, or SIGINT
ignored, every later test's child processes would inherit it, and a test
much further on would hang waiting for a signal that never arrives (seen:
the Ctrl-C test timing out only in full-suite runs). This fixture fails the
test that leaks, where the cause is.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


def _signal_state() -> tuple[frozenset[int], object, object]:
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    return (frozenset(blocked & _INTERRUPTS), signal.getsignal(signal.SIGINT),
            signal.getsignal(signal.SIGTERM))


@pytest.fixture(autouse=True)
def _signals_left_as_found() -> Iterator[None]:
    before = _signal_state()
    yield
    after = _signal_state()
    if after != before:
        # Put them back, so one leak fails one test, not every test after it.
        signal.pthread_sigmask(signal.SIG_SETMASK,
                               signal.pthread_sigmask(signal.SIG_BLOCK, set()) - _INTERRUPTS
                               | before[0])
        signal.signal(signal.SIGINT, before[1])  # type: ignore[arg-type]
        signal.signal(signal.SIGTERM, before[2])  # type: ignore[arg-type]
        pytest.fail(f"signal state changed: blocked/handlers {before} -> {after}")
