"""One worker process, as the parent sees it: start, relay progress, time out, kill.

The worker runs `python -m bench.run.worker JOB.json` in a new session (its own
process group, so a terminal Ctrl-C reaches only the parent, and a timeout or
interrupt can kill the worker together with any children it started). Its
stdout and stderr go to a log file; progress comes back as JSON lines on a
pipe whose write end is the only extra fd the worker inherits.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.timing import now_ns

KILL_GRACE_S = 3.0  # SIGTERM, then SIGKILL after this long
POLL_S = 0.5  # how often a silent worker is checked for having exited
EXIT_GRACE_S = 30.0  # after its record, a worker stuck in teardown is killed

EXITED = "exited"
TIMED_OUT = "timed out"


class WorkerProcess:
    """A running worker: its Popen, log file and progress pipe.

    Args:
        job: the job (bench/run/worker.py's docstring); `progress_fd` is filled in here.
        job_path: where to write the job file.
        log_path: where the worker's stdout and stderr go.
        env: the worker's complete environment.
    """

    def __init__(self, job: dict[str, Any], job_path: Path, log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        self.spawn_ns = int(job["spawn_ns"])
        read_fd, write_fd = os.pipe()
        self._read_fd = read_fd
        try:
            job_path.write_text(json.dumps({**job, "progress_fd": write_fd}))
            with open(log_path, "wb") as log_file:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.run.worker", str(job_path)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # only the worker holds the write end: EOF when it exits

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def watch(self, timeout_s: float, on_event: Callable[[dict[str, Any]], None]) -> str:
        """Relay progress events until the worker exits (EXITED) or times out (TIMED_OUT).

        Args:
            timeout_s: limit from the spawn, in seconds; the worker is killed after it.
            on_event: called with every progress event (a dict with "event").
        """
        deadline = self.spawn_ns + int(timeout_s * 1e9)
        buffer = b""
        recorded = False
        try:
            while True:
                remaining = (deadline - now_ns()) / 1e9
                if remaining <= 0:
                    self.kill()
                    return EXITED if recorded else TIMED_OUT
                ready, _, _ = select.select([self._read_fd], [], [], min(remaining, POLL_S))
                chunk = os.read(self._read_fd, 65536) if ready else b""
                buffer, events = _relay(buffer + chunk, on_event)
                if not recorded and "record" in events:
                    # The run is complete and stored: only teardown is left.
                    recorded = True
                    deadline = min(deadline, now_ns() + int(EXIT_GRACE_S * 1e9))
                # EOF, or a quiet poll: has the worker exited? (Its children may
                # still hold the pipe open after it is gone.)
                if (ready and not chunk) or (not ready and self.proc.poll() is not None):
                    try:
                        self.proc.wait(timeout=max(0.0, remaining))
                    except subprocess.TimeoutExpired:
                        continue
                    self.kill()  # leftovers: children the worker started
                    return EXITED
        finally:
            os.close(self._read_fd)
            self._read_fd = -1

    def kill(self) -> None:
        """SIGTERM the worker's process group, then SIGKILL whatever is left of it."""
        _signal_group(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=KILL_GRACE_S)
        _signal_group(self.proc.pid, signal.SIGKILL)  # ignored SIGTERM, or its children
        self.proc.wait()

    def close(self) -> None:
        """Release the pipe if `watch` never ran to the end."""
        if self._read_fd >= 0:
            os.close(self._read_fd)
            self._read_fd = -1

    def log_tail(self, limit: int = 16384) -> str:
        """The last `limit` bytes of the worker's log, decoded."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""


def _relay(
    buffer: bytes, on_event: Callable[[dict[str, Any]], None]
) -> tuple[bytes, list[str]]:
    """Pass on every whole JSON line in `buffer`; return the unfinished rest and event names."""
    *lines, rest = buffer.split(b"\n")
    names = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "event" in event:
            on_event(event)
            names.append(str(event["event"]))
    return rest, names


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)  # the worker leads its own group (start_new_session)
