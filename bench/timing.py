"""Clocks and statistics of the harness: perf_counter_ns only, never time.time.

Every timed region the worker measures ends with the implementation's own
device synchronisation (`impl.synchronize`), called inside the region.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from bench.contract import LoopHooks

T = TypeVar("T")


def now_ns() -> int:
    """The monotonic high-resolution clock every harness timing uses."""
    return time.perf_counter_ns()


def seconds(start_ns: int, end_ns: int) -> float:
    return (end_ns - start_ns) / 1e9


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call `fn` and return (its result, seconds it took)."""
    start = now_ns()
    result = fn()
    return result, seconds(start, now_ns())


@dataclass
class HarnessLoopHooks(LoopHooks):
    """LoopHooks that time the implementation's own batch loop.

    An implementation may call begin/end more than once per epoch (e.g. once per
    inner loop); the pairs are summed. `take()` returns and resets the total.
    """

    _start_ns: int | None = None
    _total_ns: int = 0
    _pairs: int = 0

    def begin(self) -> None:
        self._start_ns = now_ns()

    def end(self) -> None:
        end = now_ns()
        if self._start_ns is not None:
            self._total_ns += end - self._start_ns
            self._pairs += 1
            self._start_ns = None

    def take(self) -> float | None:
        """Seconds spent inside begin/end since the last take, or None if never called."""
        total = self._total_ns / 1e9 if self._pairs else None
        self._start_ns, self._total_ns, self._pairs = None, 0, 0
        return total


def median_or_none(values: Sequence[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return float(np.median(clean)) if clean else None


@dataclass
class LatencyResult:
    """Latency of one retrieval batch size: per-call times in seconds."""

    batch_size: int
    times_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ms = np.asarray(self.times_s) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        total_s = float(np.sum(self.times_s))
        return {
            "p50_ms": float(p50),
            "p95_ms": float(p95),
            "p99_ms": float(p99),
            "mean_ms": float(ms.mean()),
            "qps": self.batch_size * len(self.times_s) / total_s if total_s else None,
            "calls": len(self.times_s),
        }


def measure_calls(
    call: Callable[[int], None],
    warmup: int,
    min_calls: int,
    max_calls: int,
    budget_s: float,
) -> list[float]:
    """Time `call(i)` after `warmup` untimed calls until `budget_s` or `max_calls`.

    Args:
        call: one timed operation; receives the call index (to cycle inputs).
            It must synchronise the device itself before returning.
        warmup: untimed calls first (compilation, caches).
        min_calls: always time at least this many, even past the budget.
        max_calls: never time more than this many.
        budget_s: stop once the timed calls add up to this many seconds.
    """
    for i in range(warmup):
        call(i)
    times: list[float] = []
    spent_ns, budget_ns = 0, int(budget_s * 1e9)
    while len(times) < max_calls and (len(times) < min_calls or spent_ns < budget_ns):
        start = now_ns()
        call(warmup + len(times))
        elapsed = now_ns() - start
        times.append(elapsed / 1e9)
        spent_ns += elapsed
    return times
