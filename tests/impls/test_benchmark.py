"""pytest-benchmark: one steady training epoch and one top-100 retrieval per implementation.

Small synthetic data (tests.fixtures.make_dataset, batch 250: 8 steps). Each
implementation lives in its own child process (bench/studies/speed.py's
EpochServer) which has already compiled and warmed up; one benchmark round is
one request: the child trains an epoch and synchronises, the parent waits for
the reply (a pipe round trip, ~0.1 ms, is included). No wall-clock asserts:
run with `pytest tests/impls -m benchmark --benchmark-only`.

Retrieval (tests/impls/retrieval_server.py): impl.retrieve of a fixed block of
500 query embeddings against 400 candidates, top 100, synchronised on the
result; the block was moved to the device once, outside the timed call. The
round trip of an empty request is stored as extra_info["pipe_round_trip_s"].
"""

from __future__ import annotations

import statistics
import time

import pytest

from bench.studies.speed import EpochServer
from tests.impls.children import installed_names
from tests.impls.retrieval_server import QUERIES, K, RetrievalServer


@pytest.mark.benchmark(group="train_epoch_tiny_depth1")
@pytest.mark.parametrize("name", installed_names())
def test_train_epoch(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    with EpochServer(name, depth=1, data="tiny", batch_size=250) as server:
        benchmark.extra_info.update(server.info)
        benchmark.pedantic(server.epoch, rounds=5, warmup_rounds=1, iterations=1)


@pytest.mark.benchmark(group="retrieve_top100_tiny_depth1")
@pytest.mark.parametrize("name", installed_names())
def test_retrieve_top100(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    with RetrievalServer(name, depth=1) as server:
        assert server.info["result_shape"] == [QUERIES, K]
        benchmark.extra_info.update(server.info)
        benchmark.extra_info["pipe_round_trip_s"] = _round_trip_s(server)
        benchmark.pedantic(server.retrieve, rounds=20, warmup_rounds=2, iterations=1)


def _round_trip_s(server: RetrievalServer, n: int = 20) -> float:
    """Median seconds of an empty request: the overhead inside every timed round."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        server.ping()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
