"""The Ray executor on a two-node cluster built here (ray.cluster_utils.Cluster, loopback only).

The head (127.0.0.2) offers no run slot, so every run goes to the worker node
(127.0.0.3): the test knows where the hanging run is and removes that node; a
replacement joins so the sweep goes on. Auth is disabled for the test (RAY_AUTH_MODE).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.harness.conftest import DATASET, ROOT, read_lines
from tests.harness.ray_fakes import GATE_VAR

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from bench.run.ray_executor import SLOT  # noqa: E402

HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"
IMPLS = "tests.harness.fake_impl:FakeImpl,tests.harness.ray_fakes:GatedHangImpl"
TIMING = ("duration_s", "started_at", "run_id", "environment", "worker", "git")


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    """Ray's nodes install a SIGTERM handler in the process that starts them: undo it."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _add_node(cluster: Any) -> Any:
    with _handlers_kept():
        return cluster.add_node(node_ip_address=NODE_IP, num_cpus=1, resources={SLOT: 1})


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate") / "hang"


@pytest.fixture(scope="module")
def cluster(gate: Path) -> Any:
    """Head and one worker node; the variables are set before any Ray process starts."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_AUTH_MODE", "disabled")
    patch.setenv(GATE_VAR, str(gate))
    with _handlers_kept():
        made = Cluster(initialize_head=True, connect=False,
                       head_node_args={"node_ip_address": HEAD_IP, "num_cpus": 1})
        try:
            _add_node(made)
            made.wait_for_nodes()
            yield made
        finally:
            made.shutdown()
            patch.undo()


def _argv(results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench", "run", "--impl", IMPLS, "--dataset", DATASET,
            "--depth", "1", "--epochs", "3", "--batch-size", "500", "--validation-freq", "2",
            "--retrieve-seconds", "0.05", "--seed", "0,1", "--no-progress",
            "--results", str(results), *extra]


def _ray(cluster: Any) -> tuple[str, ...]:
    return ("--executor", "ray", "--ray-address", cluster.address, "--ray-auth", "disabled")


def _wait_for(path: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"{path} never appeared")


def _our_workers(gate: Path) -> list[psutil.Process]:
    """Run workers of this test, on any node: they carry the gate's variable."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "bench.run.worker" in (proc.info["cmdline"] or []) and \
                    proc.environ().get(GATE_VAR) == str(gate):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _comparable(rec: dict[str, Any]) -> dict[str, Any]:
    """A record without timings and machine fields: what must not depend on the executor."""
    out = {k: v for k, v in rec.items() if k not in TIMING}
    out["figures"] = sorted(rec["figures"])  # which figures, not their (timed) values
    out["curve"] = {k: v for k, v in rec["curve"].items() if k in ("epoch", "epoch_loss")}
    out["impl_info"] = {k: v for k, v in rec["impl_info"].items() if k != "target"}
    out["accuracy"] = rec["figures"].get("top100_accuracy_numpy")
    out["retrieval"] = sorted(rec.get("retrieval") or {})
    return out


def _key(rec: dict[str, Any]) -> tuple[str, str, int]:
    return rec["impl"], rec["spec_hash"], rec["repeat"]


def test_a_lost_node_fails_its_run_the_sweep_goes_on_and_resume_completes_it(
        cluster: Any, gate: Path, tmp_path: Path) -> None:
    results = tmp_path / "ray"
    gate.write_text("hang\n")
    driver = subprocess.Popen(_argv(results, *_ray(cluster)), cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        hung = int(_wait_for(Path(f"{gate}.pid"), 90))
        gate.unlink()  # the replacement node runs the rest (and --resume the lost one)
        lost = next(n for n in cluster.worker_nodes)
        cluster.remove_node(lost, allow_graceful=False)
        _add_node(cluster)
        out, err = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 1, err
    lines = read_lines(results)
    assert len(lines) == 4 and len({r["run_id"] for r in lines}) == 4  # one record per run
    failed = [r for r in lines if r["status"] != "ok"]
    assert len(failed) == 1 and failed[0]["status"] == "failed", err
    assert failed[0]["impl"].endswith("GatedHangImpl")
    error = failed[0]["error"]
    assert "NodeDiedError" in error or "WorkerCrashedError" in error, error
    assert NODE_IP in error or lost.node_id in error, error  # the node is named
    assert not psutil.pid_exists(hung) or psutil.Process(hung).status() == "zombie"
    assert _our_workers(gate) == []  # no worker left anywhere
    ok = [r for r in lines if r["status"] == "ok"]
    assert {r["environment"]["executor"]["node_ip"] for r in ok} == {NODE_IP}
    assert all(r["environment"]["executor"]["runs_per_node"] == 1 for r in ok)

    resumed = subprocess.run(_argv(results, *_ray(cluster), "--resume"), cwd=ROOT, text=True,
                             capture_output=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    after = read_lines(results)
    assert len(after) == 5 and after[-1]["status"] == "ok" and _key(after[-1]) == _key(failed[0])

    # The same sweep on the local executor gives the same records, timings and machine aside.
    local = tmp_path / "local"
    done = subprocess.run(_argv(local), cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    by_ray = sorted((_comparable(r) for r in after if r["status"] == "ok"), key=json.dumps)
    by_local = sorted((_comparable(r) for r in read_lines(local)), key=json.dumps)
    assert by_ray == by_local
