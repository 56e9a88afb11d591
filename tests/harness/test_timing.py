"""Clocks and statistics: loop hooks, the call-timing loop, latency summaries."""

from __future__ import annotations

import time

import pytest

from bench.timing import HarnessLoopHooks, LatencyResult, measure_calls


def test_loop_hooks_sum_pairs_and_reset() -> None:
    hooks = HarnessLoopHooks()
    assert hooks.take() is None  # never called: the impl does not report its loop
    for _ in range(2):
        hooks.begin()
        time.sleep(0.01)
        hooks.end()
    total = hooks.take()
    assert total is not None and total >= 0.02
    assert hooks.take() is None


def test_measure_calls_warms_up_then_respects_min_and_max() -> None:
    seen: list[int] = []
    times = measure_calls(seen.append, warmup=3, min_calls=5, max_calls=8, budget_s=0.0)
    assert len(times) == 5  # budget spent at once: the minimum still runs
    assert seen == list(range(8))  # 3 untimed warm-up calls first
    times = measure_calls(lambda i: None, warmup=0, min_calls=1, max_calls=8, budget_s=10.0)
    assert len(times) == 8


def test_latency_summary() -> None:
    summary = LatencyResult(100, [0.001] * 10 + [0.011]).summary()
    assert summary["p50_ms"] == pytest.approx(1.0)
    assert summary["p99_ms"] > summary["p50_ms"]
    assert summary["qps"] == pytest.approx(100 * 11 / 0.021)
    assert summary["calls"] == 11
