"""bench.process's interactive mode and ChildServer on a child without a framework."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from bench.process import DONE, EXITED, TIMED_OUT, WorkerProcess, interruptible, worker_env
from bench.studies.child_server import QUIT, REPLY, ChildServer
from bench.timing import now_ns

CHILD = "tests.harness.echo_child"


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _gone(pid: int) -> bool:
    """True once `pid` has stopped running, within a few seconds (a signal is not instant)."""
    deadline = _soon(5)
    while _alive(pid) and now_ns() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _soon(seconds: float = 10.0) -> int:
    return now_ns() + int(seconds * 1e9)


def test_requests_on_stdin_answers_as_events(tmp_path: Path) -> None:
    proc = WorkerProcess(CHILD, [], worker_env(), tmp_path / "child.log", stdin=True)
    try:
        assert proc.start()
        ready = proc.next_event(_soon())
        assert ready is not None and ready["event"] == REPLY and ready["ready"] is True
        proc.send("ping")
        assert proc.next_event(_soon()) == {"event": REPLY}
        proc.send(QUIT)
        last = proc.next_event(_soon())
        assert last is not None and last["event"] == DONE
        assert proc.next_event(_soon()) is None
        assert (proc.outcome, proc.returncode) == (EXITED, 0)
    finally:
        proc.close()
    assert "frameworks print to stdout freely" in proc.log_tail()


def test_next_event_past_its_deadline_kills_the_child(tmp_path: Path) -> None:
    proc = WorkerProcess(CHILD, [], worker_env(), tmp_path / "child.log", stdin=True)
    try:
        proc.start()
        assert proc.next_event(_soon()) is not None
        proc.send("hang")
        assert proc.next_event(_soon(0.5)) is None
        assert proc.outcome == TIMED_OUT and proc.returncode is not None
    finally:
        proc.close()


def test_child_server_close_kills_the_group() -> None:
    with ChildServer("jax", CHILD, []) as server:  # "jax": any registry name, for its env
        assert server.ask("ping") == {}
        grandchild = int(server.ask("spawn")["pid"])
        assert _alive(server.info["pid"]) and _alive(grandchild)
    assert _gone(server.info["pid"]) and _gone(grandchild)


def test_child_server_failure_kills_the_child_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the child logs go
    server = ChildServer("jax", CHILD, [], timeout_s=0.5)
    with pytest.raises(RuntimeError, match="timed out"):
        server.ask("hang")
    assert _gone(server.info["pid"])
    server.close()  # a second close does nothing
    with ChildServer("jax", CHILD, []) as server, pytest.raises(RuntimeError, match="KeyError"):
        server.ask("no such request")
    assert not list(tmp_path.iterdir())  # every log removed


def test_interruptible_resets_an_ignored_sigint_and_raises_only_once() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a script's background job
    try:
        # Caught inside, the interrupt is raised again as the block ends: it ends interrupted.
        with pytest.raises(KeyboardInterrupt), interruptible():
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            os.kill(os.getpid(), signal.SIGTERM)  # ignored while the first one unwinds
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # as it was before
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, before)


class _InterruptedFinaliser:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # handled here, where Python swallows exceptions
        time.sleep(5)


def test_an_interrupt_a_finaliser_swallowed_ends_the_block_interrupted(
        capfd: pytest.CaptureFixture[str]) -> None:
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt), interruptible():
        _InterruptedFinaliser()  # dropped at once: __del__ runs, its KeyboardInterrupt is lost
        reached_the_end = True
    assert reached_the_end  # the work went on, as it does wherever the interrupt was swallowed
    assert "Exception ignored" not in capfd.readouterr().err  # and no traceback was printed


def test_after_a_swallowed_interrupt_the_next_one_stops_the_work_at_once() -> None:
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interruptible():
        _InterruptedFinaliser()  # swallowed: nothing unwinds, so Ctrl-C is not ignored after it
        start = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert time.monotonic() - start < 4


def test_interruptible_off_the_main_thread_fails_before_changing_anything() -> None:
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            with interruptible():
                pass
        except ValueError as exc:  # signal handlers belong to the main thread
            errors.append(exc)

    hook, mask = sys.unraisablehook, signal.pthread_sigmask(signal.SIG_BLOCK, set())
    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert sys.unraisablehook is hook and signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask


def test_interruptible_unblocks_an_inherited_mask_and_restores_it() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        with pytest.raises(KeyboardInterrupt), interruptible():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def test_an_interrupt_in_a_nested_block_is_still_ignored_outside_it() -> None:
    with interruptible():
        with pytest.raises(KeyboardInterrupt), interruptible():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the outer block unwinds
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
