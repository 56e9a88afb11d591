"""A child process that holds one built implementation and answers requests.

Both sides of the protocol shared by the speed study and the benchmarks.
Parent (`ChildServer`, imports no framework): starts `python -m <module>
<args>` as a bench.process.WorkerProcess (its own process group, the
implementation's registry environment, a log file), writes each request as a
line on the child's stdin and reads the answer as a REPLY event on the event
pipe; stdout belongs to the frameworks and goes to the log. Child (`serve`):
builds, sends its info as the first REPLY, then answers each request line
until `quit` (or the end of stdin: the parent is gone).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from bench import registry
from bench.process import EventPipe, WorkerProcess, child_main, worker_env
from bench.timing import now_ns

REPLY = "reply"  # the event every answer comes in
QUIT = "quit"
TIMEOUT_S = 600.0  # for the build, and for each answer: a stuck child is killed
QUIT_GRACE_S = 10.0  # after `quit`, then the child's group is killed

Answer = dict[str, Any]
Handlers = Mapping[str, Callable[[], Answer]]


class ChildServer:
    """Start `python -m module *args` for implementation `name`; `ask` it requests.

    `info` is the child's first answer, sent once built and warmed up. Any
    failure (an exit, a timeout, an exception here) kills the child's group.
    """

    def __init__(self, name: str, module: str, args: list[str],
                 timeout_s: float = TIMEOUT_S) -> None:
        env = worker_env(registry.get(name).env)
        fd, log_path = tempfile.mkstemp(prefix=f"deeprec-{name}-", suffix=".log")
        os.close(fd)  # the worker's log; WorkerProcess opens it again
        self._timeout_s = timeout_s
        self._proc = WorkerProcess(module, args, env, Path(log_path), stdin=True)
        try:
            self._proc.start()
            self.info = self._reply()
        except BaseException:
            self._stop()
            raise

    def ask(self, request: str) -> Answer:
        """Send one request line; return the child's answer."""
        try:
            with contextlib.suppress(BrokenPipeError):  # it died: `_reply` says how
                self._proc.send(request)
            return self._reply()
        except BaseException:
            self._stop()
            raise

    def _reply(self) -> Answer:
        event = self._proc.next_event(now_ns() + int(self._timeout_s * 1e9))
        if event is None or event["event"] != REPLY:
            self._proc.close()  # for its exit code
            raise RuntimeError(f"{type(self).__name__} child {self._proc.outcome} (exit code "
                               f"{self._proc.returncode}); its log ends:\n"
                               f"{self._proc.log_tail(3000)}")
        del event["event"]
        return event

    def close(self) -> None:
        """Ask the child to quit; kill its group if it is not gone after QUIT_GRACE_S."""
        if not self._proc.outcome:  # still serving
            with contextlib.suppress(BrokenPipeError):
                self._proc.send(QUIT)
            deadline = now_ns() + int(QUIT_GRACE_S * 1e9)
            while self._proc.next_event(deadline) is not None:
                pass
        self._stop()

    def _stop(self) -> None:
        """Kill the child's group (if it is still there) and remove its log."""
        self._proc.close()
        self._proc.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ChildServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(build: Callable[[], tuple[Answer, Handlers]]) -> NoReturn:
    """Child side: `build()` gives the info and a handler per request; answer until `quit`."""

    def work(events: EventPipe) -> int:
        info, handlers = build()
        events(REPLY, **info)
        for line in iter(_next_request, QUIT):
            events(REPLY, **handlers[line]())  # an unknown request fails the child
        return 0

    child_main(work)


def _next_request() -> str:
    """The next request line from stdin; QUIT at its end (the parent is gone)."""
    try:
        return input().strip()
    except EOFError:
        return QUIT
