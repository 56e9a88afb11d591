"""pytest-benchmark: one steady training epoch of every installed implementation.

Small synthetic data (tests.fixtures.make_dataset, batch 250: 8 steps). Each
implementation lives in its own child process (tests/impls/speed.py's
EpochServer) which has already compiled and warmed up; one benchmark round is
one request: the child trains an epoch and synchronises, the parent waits for
the reply (a pipe round trip, ~0.1 ms, is included). No wall-clock asserts:
run with `pytest tests/impls -m benchmark --benchmark-only`.
"""

from __future__ import annotations

import pytest

from tests.impls.children import installed_names
from tests.impls.speed import EpochServer


@pytest.mark.benchmark(group="train_epoch_tiny_depth1")
@pytest.mark.parametrize("name", installed_names())
def test_train_epoch(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    with EpochServer(name, depth=1, data="tiny", batch_size=250) as server:
        benchmark.extra_info.update(server.info)
        benchmark.pedantic(server.epoch, rounds=5, warmup_rounds=1, iterations=1)
