"""Resident memory of this process, and its peak, from /proc/self/status (Linux).

The peak (VmHWM) can be reset to the current RSS by writing "5" to
/proc/self/clear_refs, so each setting's peak is its own; `reset_peak` says
whether that worked, and the worker stores no peak for a setting where it did not.
`RssSampler` polls RSS from a thread, a cross-check of VmHWM (see there).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """Current resident set size in MiB (0.0 where /proc is missing)."""
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else 0.0


def peak_rss_mb() -> float:
    """Peak resident set size in MiB since start or the last `reset_peak`."""
    kb = _status_kb("VmHWM")
    if kb is None:  # no /proc: ru_maxrss is KiB on Linux
        kb = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return kb / 1024


def trim() -> None:
    """Give freed heap memory back to the OS (glibc malloc_trim), so RSS is what is in use.

    Without it, a setting that follows a larger one reuses retained heap and its
    own working memory would not show as an RSS increase.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> bool:
    """Trim the heap, reset the peak to the current RSS; False where that is not allowed."""
    trim()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Highest RSS a background thread sees while the `with` block runs.

    A second, independent reading of the peak: the kernel keeps VmHWM from
    per-thread RSS counters it syncs lazily (proc(5) calls both VmHWM and
    statm "inaccurate"), so the worker takes the larger of VmHWM and this
    poll of /proc/self/statm every `interval_s`. It costs a little CPU, so
    it runs over an untimed call only. (A test shows VmHWM does see memory
    released with madvise on this kernel; the poll is a cross-check, not a fix.)
    """

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.peak_mb = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, _statm_rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())


_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _statm_rss_mb() -> float:
    """Current RSS from /proc/self/statm (cheaper to read than status); 0.0 without /proc."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_MB
    except (OSError, IndexError, ValueError):
        return 0.0
