"""Peak memory: VmHWM and the RSS sampler both see memory held only briefly."""

from __future__ import annotations

import mmap
import time

import pytest

from bench.retrieval import memory

SIZE = 256 * 2**20


def _touch_and_madvise_away() -> None:
    """256 MiB made resident, held 50 ms, then released with madvise (no munmap)."""
    m = mmap.mmap(-1, SIZE)
    for offset in range(0, SIZE, mmap.PAGESIZE):
        m[offset] = 1
    time.sleep(0.05)
    m.madvise(mmap.MADV_DONTNEED)
    time.sleep(0.01)
    m.close()


@pytest.mark.skipif(not memory.reset_peak(), reason="needs /proc/self/clear_refs (Linux)")
def test_peak_readings_catch_memory_released_with_madvise() -> None:
    memory.reset_peak()
    before = memory.rss_mb()
    with memory.RssSampler() as sampler:
        _touch_and_madvise_away()
    assert sampler.peak_mb - before > 0.8 * SIZE / 2**20
    assert memory.peak_rss_mb() - before > 0.8 * SIZE / 2**20
    assert memory.rss_mb() - before < 0.5 * SIZE / 2**20  # it really was released


def test_sampler_without_allocation_stays_near_current_rss() -> None:
    with memory.RssSampler() as sampler:
        time.sleep(0.01)
    assert abs(sampler.peak_mb - memory.rss_mb()) < 64
