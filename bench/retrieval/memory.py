"""Resident memory of this process, and its peak, from /proc/self/status (Linux).

The peak (VmHWM) can be reset to the current RSS by writing "5" to
/proc/self/clear_refs, so each setting's peak is its own; where that is not
possible the peak is getrusage's, since process start, and says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource
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
