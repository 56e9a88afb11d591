"""torch over 2 gloo ranks learns what torch on one device learns, and its ranks die with the run.

Shared start on the tiny dataset: 10 batches of 190 rows and a short one of
11, which does not split evenly over 2 ranks (5 and 6 rows): the per-rank
loss weighting of impls/torch_native/ddp.py is what keeps that step equal to
one device's. Two epochs, with import_weights between two runs of the same
object, compared with `bench parity`'s rule (bench/parity/compare.py). The
training runs in a child process (`python -m tests.impls.test_devices_torch
MODE FOLDER`, torch's registry environment); the main pytest process imports
no framework.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import registry
from bench.parity.compare import load_result, loss_mismatch, save_result, weight_mismatch
from bench.process import worker_env
from bench.spec import RunSpec
from bench.weights import init_weights
from tests.fixtures import make_dataset

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 2
STEPS = EPOCHS * 11
PIDS = "pids.json"

pytestmark = pytest.mark.skipif(not registry.get("torch").installed(), reason="torch not installed")


def _spec(devices: int) -> RunSpec:
    spec = RunSpec(impl="torch", layer_sizes=(64, 32), batch_size=190, top_k=10, device="cpu")
    return dataclasses.replace(spec, devices=devices)


def _train(devices: int, folder: Path) -> object:
    """Train torch on `devices` from the shared start; save losses and weights; the impl."""
    data = make_dataset(n_train=10 * 190 + 11, n_test=200, seed=3)
    weights = init_weights(data.vocab, (64, 32), _spec(1).embedding_dim, seed=11)
    impl = registry.get("torch").load()(_spec(devices), data, weights)
    impl.train_epoch()
    impl.import_weights(weights)  # a second start from the same weights, on the same ranks
    losses = np.concatenate([impl.train_epoch() for _ in range(EPOCHS)])
    save_result(folder / f"x{devices}.npz", losses, impl.export_weights())
    assert 0.0 <= impl.evaluate() <= 1.0
    return impl


def _child(mode: str, folder: Path) -> None:
    """parity: 1 then 2 devices, helper pids written after close; hold: 2 devices, then wait."""
    if mode == "parity":
        _train(1, folder)
    impl = _train(2, folder)
    pids = [p.pid for p in impl._parallel.procs]  # type: ignore[attr-defined]
    info = impl.resolved_options()["data_parallel"]  # type: ignore[attr-defined]
    assert (info["devices"], info["collective"], info["per_device_batch"]) == (2, "gloo", 95)
    if mode == "parity":
        impl.close_parallel()  # type: ignore[attr-defined]
    (folder / PIDS).write_text(json.dumps(pids))
    time.sleep(120 if mode == "hold" else 0)


def _start(mode: str, folder: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.impls.test_devices_torch", mode, str(folder)]
    return subprocess.Popen(cmd, cwd=ROOT, env=worker_env(registry.get("torch").env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _alive(pid: int) -> bool:
    """Running (a zombie, dead and not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _descendants(pid: int) -> list[int]:
    """`pid`'s living descendants, from /proc (children before grandchildren)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        frontier = [c for c, p in parents.items() if p in frontier]
        found += frontier
    return found


def _communicate_or_dump(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The child's output; if it hangs, fail with every process's Python stacks (SIGUSR1)."""
    try:
        return proc.communicate(timeout=timeout_s)[0]
    except subprocess.TimeoutExpired:
        tree = [proc.pid, *_descendants(proc.pid)]
        states = {p: Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
                  for p in tree if _alive(p)}
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)
        time.sleep(3)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        output = proc.communicate(timeout=30)[0]
        pytest.fail(f"hung after {timeout_s} s; processes (pid: state) {states}; "
                    f"output and stacks:\n{output[-12000:]}")


def test_two_gloo_ranks_match_one_device(tmp_path: Path) -> None:
    proc = _start("parity", tmp_path)
    output = _communicate_or_dump(proc, 300)  # 20 s alone; generous for a loaded machine
    assert proc.returncode == 0, output[-4000:]
    one_losses, one_weights = load_result(tmp_path / "x1.npz")
    losses, weights = load_result(tmp_path / "x2.npz")
    assert len(losses) == STEPS
    assert loss_mismatch(losses, one_losses) is None, loss_mismatch(losses, one_losses)
    assert weight_mismatch(weights, one_weights) is None, weight_mismatch(weights, one_weights)
    pids = json.loads((tmp_path / PIDS).read_text())
    assert len(pids) == 1 and _gone(pids, 0.0)  # closed with the run


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_ranks_die_with_the_worker(tmp_path: Path) -> None:
    proc = _start("hold", tmp_path)
    deadline = time.monotonic() + 90
    while not (tmp_path / PIDS).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / PIDS).exists(), proc.communicate(timeout=30)[0][-4000:]
    pids = json.loads((tmp_path / PIDS).read_text())
    assert all(_alive(p) for p in pids)
    os.kill(proc.pid, signal.SIGKILL)  # the worker killed outright: nothing of it runs on
    proc.communicate(timeout=30)
    assert _gone(pids), f"rank processes {pids} outlived their worker"


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks if the test sees a hang
    _child(sys.argv[1], Path(sys.argv[2]))
