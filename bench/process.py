"""THE child-process launcher: how every worker of the harness starts, reports and ends.

Parent side. `worker_env` builds every child's environment. `WorkerProcess`
runs `python -m <module> <args>` in a new session: its own process group, so a
terminal Ctrl-C reaches only the parent, and a timeout or an interrupt kills
the worker together with any children it started (`kill_group`). Its stdout
and stderr go to a log file; its results come back as JSON-line events on a
pipe, the one extra fd it inherits (named by DEEPREC_EVENT_FD); a server
(bench/studies/child_server.py) also reads requests on its stdin. Inside
`interruptible()` (every command runs in it, bench/cli.py), Ctrl-C and SIGTERM
raise KeyboardInterrupt once, so a parent that is killed still kills its
workers, records what was interrupted and removes its temp folders on the way
out, and a second signal cannot cut that short.

Child side. `child_main` wraps a worker's work: a parent-death signal (Linux: a
worker never outlives the process that started it, even when that process is
SIGKILLed, as a Ray worker on a lost node is), SIGINT and SIGTERM unblocked,
faulthandler, logging, the event pipe (`EventPipe`), a last DONE event, and an
exit that skips interpreter teardown.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

from bench.envinfo import PROJECT_ROOT
from bench.timing import now_ns

EVENT_FD_VAR = "DEEPREC_EVENT_FD"  # the event pipe's write end, in the worker
PARENT_PID_VAR = "DEEPREC_PARENT_PID"  # who started the worker (its parent-death signal)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
DONE = "done"  # a worker's last event: its result is complete, only teardown is left
KILL_GRACE_S = 3.0  # SIGTERM, then SIGKILL after this long
POLL_S = 0.5  # how often a silent worker is checked for having exited
EXIT_GRACE_S = 30.0  # after DONE, a worker stuck in teardown is killed

_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)  # what `interruptible` turns into KeyboardInterrupt

EXITED = "exited"
TIMED_OUT = "timed out"

log = logging.getLogger(__name__)
Event = dict[str, Any]


def worker_env(*overrides: Mapping[str, str]) -> dict[str, str]:
    """Every child's environment: this process's, then each of `overrides` in turn.

    TF_CPP_MIN_LOG_LEVEL defaults to 2 (TF's C++ chatter would bury the log);
    the current directory and the repository lead PYTHONPATH, so the child
    imports `bench` and out-of-tree `module:Class` targets as the parent does.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for extra in overrides:
        env.update(extra)
    path = [os.getcwd(), str(PROJECT_ROOT), *env.get("PYTHONPATH", "").split(os.pathsep)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in path if p))
    return env


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the process group that `pid` leads (a worker: start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class WorkerProcess:
    """One worker: `python -m module *args`, in its own process group, killed with it.

    `watch` runs it to the end. Interactively: `start`, then `send` lines to
    its stdin and read its answers with `next_event`; `close` ends it.

    Args:
        module: the worker module (run with `python -m`).
        args: its command-line arguments.
        env: its complete environment (`worker_env`).
        log_path: where its stdout and stderr go.
        stdin: give it a pipe on stdin (`send`) rather than /dev/null.
    """

    def __init__(self, module: str, args: Sequence[str], env: Mapping[str, str],
                 log_path: Path, stdin: bool = False) -> None:
        self.command = [sys.executable, "-m", module, *args]
        self.env = dict(env)
        self.log_path = log_path
        self.stdin = subprocess.PIPE if stdin else subprocess.DEVNULL
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawn_ns = 0
        self.outcome = ""  # EXITED or TIMED_OUT once its events have ended
        self._read_fd = -1
        self._buffer = b""  # an unfinished line of the event pipe
        self._pending: deque[Event] = deque()  # events read and not yet returned
        self._done_ns = 0  # when DONE came
        self._lock = threading.Lock()  # `kill` may come from another thread
        self._killed = False  # once set, the worker never starts (again)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def watch(self, timeout_s: float, on_event: Callable[[Event], None]) -> str:
        """Start the worker; relay its events until it exits (EXITED) or times out (TIMED_OUT).

        Whatever ends the watch (an exception, Ctrl-C), the worker's group is
        killed before it returns: no worker outlives its watch. A worker
        killed before it started never starts (EXITED, returncode None).

        Args:
            timeout_s: limit from the spawn, in seconds; the worker is killed after it.
            on_event: called with every event (a dict with "event") the worker sends.
        """
        try:
            if not self.start():
                return EXITED
            deadline = self.spawn_ns + int(timeout_s * 1e9)
            while (event := self.next_event(deadline)) is not None:
                on_event(event)
            return self.outcome
        finally:
            self.close()

    def start(self) -> bool:
        """Popen the worker with SIGINT and SIGTERM held, so an interrupt never orphans it.

        False, and nothing started, when it was killed first. `close` must follow.
        """
        self._read_fd, write_fd = os.pipe()  # `close` closes the read end
        try:
            with self._lock, signals_deferred(), open(self.log_path, "wb") as log_file:
                if self._killed:
                    return False
                self.spawn_ns = now_ns()
                # Unbuffered: the log holds every line written before a crash.
                env = {**self.env, EVENT_FD_VAR: str(write_fd), "PYTHONUNBUFFERED": "1",
                       PARENT_PID_VAR: str(os.getpid())}
                self.proc = subprocess.Popen(
                    self.command, env=env,
                    stdin=self.stdin, stdout=log_file, stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,), start_new_session=True,
                )
        finally:
            os.close(write_fd)  # only the worker holds the write end: EOF when it exits
        return True

    def send(self, line: str) -> None:
        """Write one line to the worker's stdin (made with stdin=True); BrokenPipeError if gone."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def next_event(self, deadline_ns: int) -> Event | None:
        """The worker's next event, waiting until `deadline_ns` at most; None once they end.

        They end when it exits (`outcome` EXITED) or is killed at the deadline
        (TIMED_OUT; EXITED if it had sent DONE, after which it has EXIT_GRACE_S).
        """
        while not self._pending and not self.outcome:
            self._read(deadline_ns)
        return self._pending.popleft() if self._pending else None

    def _read(self, deadline_ns: int) -> None:
        """Wait a poll for the worker: take what it sent, or set `outcome` once it has ended."""
        assert self.proc is not None
        if self._done_ns:  # the result is complete: only teardown is left
            deadline_ns = min(deadline_ns, self._done_ns + int(EXIT_GRACE_S * 1e9))
        remaining = (deadline_ns - now_ns()) / 1e9
        if remaining <= 0:
            self.kill()
            self._take(self._drain())  # what it sent before it died
            self.outcome = EXITED if self._done_ns else TIMED_OUT
            return
        ready, _, _ = select.select([self._read_fd], [], [], min(remaining, POLL_S))
        chunk = os.read(self._read_fd, 65536) if ready else b""
        self._take(chunk)
        # EOF, or a quiet poll: has the worker exited? (Its children may
        # still hold the pipe open after it is gone.)
        if (ready and not chunk) or (not ready and self.proc.poll() is not None):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=max(0.0, remaining))
                self.kill()  # leftovers: children the worker started
                self.outcome = EXITED

    def _take(self, chunk: bytes) -> None:
        """Queue every whole JSON-line event in what was read; note when DONE came."""
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and "event" in event:
                self._pending.append(event)
                if event["event"] == DONE and not self._done_ns:
                    self._done_ns = now_ns()

    def _drain(self) -> bytes:
        """What the killed worker wrote and `_read` has not read yet."""
        data = b""
        while select.select([self._read_fd], [], [], 0)[0]:
            if not (chunk := os.read(self._read_fd, 65536)):
                break
            data += chunk
        return data

    def kill(self) -> None:
        """SIGTERM the worker's process group, then SIGKILL whatever is left of it."""
        with self._lock:
            first, self._killed = not self._killed, True
        if self.proc is None:
            return
        if first or self.proc.poll() is None:
            kill_group(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=KILL_GRACE_S)
            kill_group(self.proc.pid)  # ignored SIGTERM, or its children
        self.proc.wait()

    def close(self) -> None:
        """Kill the worker's group and close the parent's pipes: no more events, no input."""
        self.kill()
        self.outcome = self.outcome or EXITED
        if self._read_fd >= 0:
            os.close(self._read_fd)
            self._read_fd = -1
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def log_tail(self, limit: int = 16384) -> str:
        """The last `limit` bytes of the worker's log, decoded."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done (then they are delivered).

    The mask holds them off this thread and the workers started inside (they
    inherit it). The kernel may hand one to another thread instead (numpy's
    BLAS pool), where Python's handler still runs: on the main thread the
    handlers only note it meanwhile, and the first noted one is raised again
    after the block.
    """
    noted: list[int] = []
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.getsignal(sig) for sig in _INTERRUPTS}
        handlers = {sig: h for sig, h in handlers.items() if h is not None}
        for sig in handlers:
            signal.signal(sig, lambda signum, _frame: noted.append(signum))
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(_INTERRUPTS))
    try:
        yield
    finally:
        # The mask first, while only the noting handlers are installed: nothing here can
        # raise before it. (Restored second, a signal caught meanwhile by another thread
        # raised KeyboardInterrupt from the restored handler and skipped the unmasking:
        # the process and every child it started later kept SIGINT blocked, deaf to Ctrl-C.)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if noted:
            signal.raise_signal(noted[0])


# One entry per open `interruptible` block, innermost last: whether an interrupt was raised
# while that block's handler was the one installed.
_raised: list[bool] = []


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C or SIGTERM: ignore any more (the unwinding must finish), then raise."""
    for sig in _INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)
    if _raised:
        _raised[-1] = True
    raise KeyboardInterrupt


def _quiet_swallowed_interrupt(unraisable: Any, hook: Callable[[Any], None]) -> None:
    """sys.unraisablehook: a KeyboardInterrupt a finaliser swallowed is raised again later.

    Nothing is unwinding, so the handlers go back from ignoring to raising: the next
    Ctrl-C or SIGTERM stops the work at once instead of being ignored to the block's end.
    """
    if unraisable.exc_type is not KeyboardInterrupt:
        hook(unraisable)
    elif threading.current_thread() is threading.main_thread():
        for sig in _INTERRUPTS:
            signal.signal(sig, _raise_interrupt)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside the block, Ctrl-C or SIGTERM raises KeyboardInterrupt once (handlers restored after).

    The one place that resets an inherited SIG_IGN or blocked mask: Ctrl-C works
    even where a script started the parent in the background with SIGINT ignored,
    or from a thread that had it blocked. The exception unwinds through `watch`,
    which kills the worker's group; any further signal is ignored until the block
    ends, so killing workers, writing "interrupted" records and removing temp
    folders all finish. An interrupt that lands where Python swallows exceptions
    (a finaliser, a weakref callback) is raised again when the block ends: the
    work ran on, but the command still ends interrupted, never as if it was not.
    """
    old = {sig: signal.getsignal(sig) for sig in _INTERRUPTS}
    nested = any(h is _raise_interrupt for h in old.values())
    for sig in _INTERRUPTS:  # first: off the main thread this raises, before any state changed
        signal.signal(sig, _raise_interrupt)
    mask = None if nested else signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_INTERRUPTS))
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: _quiet_swallowed_interrupt(u, hook)
    _raised.append(False)
    try:
        yield
        if _raised[-1]:  # raised, then swallowed: the block must not end as if uninterrupted
            raise KeyboardInterrupt
    finally:
        _raised.pop()
        sys.unraisablehook = hook
        for sig, handler in old.items():
            # Nested in another interruptible block: an interrupt in here goes on being
            # ignored there, where the same interruption is still unwinding.
            if not (handler is _raise_interrupt and signal.getsignal(sig) == signal.SIG_IGN):
                signal.signal(sig, handler)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class EventPipe:
    """The worker's end of the event pipe: JSON lines; a vanished parent never stops the work.

    Sends nothing when the worker was not started by WorkerProcess.
    """

    def __init__(self) -> None:
        fd = os.environ.pop(EVENT_FD_VAR, "")  # the worker's own children do not hold it
        self._file: TextIO | None = os.fdopen(int(fd), "w", buffering=1) if fd else None

    def __call__(self, event: str, **fields: Any) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        except (BrokenPipeError, OSError):
            self._file = None  # the parent is gone; the work still finishes


def die_with_parent() -> None:
    """SIGKILL this process when the parent that started it dies (Linux; elsewhere a no-op).

    The worker runs in its own session, so nothing else ends it when its parent is
    killed outright (a Ray worker on a lost node, or one force-cancelled): it would go
    on training beside the next run on that device. The kernel sends the signal when
    the parent *thread* that forked the worker exits: WorkerProcess is started and
    waited for by the same thread. A parent already gone before the signal was armed
    (the worker's parent is no longer the pid it was given) exits at once.
    """
    expected = os.environ.pop(PARENT_PID_VAR, "")  # the worker's own children do not inherit it
    if not expected or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if not armed:
        log.warning("no parent-death signal: this worker may outlive its parent")
    if os.getppid() != int(expected):
        os._exit(1)  # orphaned before the signal was armed


def child_main(work: Callable[[EventPipe], int]) -> NoReturn:
    """A worker's whole life: set up, run `work(events)`, send DONE, exit with its code.

    The exit skips interpreter teardown, where frameworks' threads and atexit
    hooks can hang or crash after the work is done. An exception from `work`
    is logged and exits 1 without DONE.
    """
    die_with_parent()
    # A parent starts workers with SIGINT and SIGTERM blocked (signals_deferred); the
    # mask is inherited, and SIGTERM must reach the worker.
    # Nor may an ignored SIGTERM be (a worker started while its parent unwound an interrupt).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_INTERRUPTS))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    faulthandler.enable()  # a segfault still leaves a Python traceback in the log
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    events = EventPipe()
    try:
        code = work(events)
    except Exception:
        log.exception("worker failed")
        code = 1
    else:
        events(DONE, exit_code=code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
