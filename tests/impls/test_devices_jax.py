"""`--devices N`: one run data-parallel over N (simulated) devices, checked against one device.

The pytest process imports no framework: the 1-vs-2 parity runs `bench parity
--devices 2`, one worker process per (implementation, device count), and the
placement check runs in a child with XLA_FLAGS set before jax is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from bench.errors import UsageError
from bench.parity.runner import DEVICES_FILE
from bench.spec import RunSpec, check_devices

ROOT = Path(__file__).resolve().parents[2]
DATA = "tests.fixtures:make_dataset"  # 2000 training rows
_JAX = pytest.mark.skipif(not registry.get("jax").installed(), reason="jax not installed")


def test_devices_left_out_of_the_spec_at_one() -> None:
    """Old specs keep their hashes; a run over 2 devices is another spec."""
    one, two = RunSpec(impl="jax"), RunSpec(impl="jax", devices=2)
    assert "devices" not in one.to_dict()
    assert two.to_dict()["devices"] == 2
    assert one.spec_hash() != two.spec_hash()
    assert RunSpec.from_dict(two.to_dict()) == two
    assert RunSpec.from_dict(one.to_dict()) == one


def test_devices_checked() -> None:
    check_devices(2, [100, 1000])
    with pytest.raises(UsageError, match="does not split evenly"):
        check_devices(3, [1000])
    with pytest.raises(UsageError, match="--devices must be >= 1"):
        check_devices(0, [1000])


def test_who_runs_data_parallel() -> None:
    for name in ("jax", "jax-padded", "keras-jax", "keras-tf", "torch", "torch-dedup"):
        registry.check_devices(registry.get(name), 2)
    with pytest.raises(UsageError, match="Keras offers no distribution on the torch"):
        registry.check_devices(registry.get("keras-torch"), 2)
    with pytest.raises(UsageError, match="jax-scan: no data-parallel path"):
        registry.check_devices(registry.get("jax-scan"), 2)
    registry.check_devices(registry.get("jax-scan"), 1)


def test_simulated_devices_env() -> None:
    flag = "--xla_force_host_platform_device_count=2"
    assert flag in registry.devices_env(registry.get("keras-jax"), "cpu", 2)["XLA_FLAGS"]
    assert registry.devices_env(registry.get("jax"), "cpu", 1) == {}
    assert registry.devices_env(registry.get("jax"), "gpu", 2) == {}
    assert registry.devices_env(registry.get("keras-torch"), "cpu", 2) == {}


_PLACEMENT = """
import jax
from bench.spec import RunSpec
from bench.weights import init_weights
from impls.jax_native.impl import JaxRetrieval
from tests.fixtures import make_dataset
data = make_dataset()
spec = RunSpec(impl="jax", layer_sizes=(32,), batch_size=100, device="cpu", devices=2)
impl = JaxRetrieval(spec, data, init_weights(data.vocab, spec.layer_sizes, 32, 0))
batch = impl._arrays.train[0]
assert all(len(a.sharding.device_set) == 2 and not a.sharding.is_fully_replicated
           for a in batch.values()), "batch not sharded"
assert all(p.sharding.is_fully_replicated for p in impl._params.values()), "params not replicated"
hlo = impl._step_fn.lower(impl._params, impl._acc, batch, impl._lr).compile().as_text()
assert "all-reduce" in hlo, "no all-reduce in the compiled step"
print("ok", impl.resolved_options()["data_parallel"]["per_device_batch"])
"""


@_JAX
def test_jax_step_sharded_over_two_devices() -> None:
    """Batch sharded, params replicated, the compiler's all-reduce in the compiled step."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _PLACEMENT], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok 50" in out.stdout, out.stderr[-3000:]


@_JAX
@pytest.mark.skipif(not registry.get("keras-jax").installed(), reason="keras not installed")
def test_jax_and_keras_jax_on_two_devices_learn_what_one_learns(tmp_path: Path) -> None:
    """Shared-start parity 1-vs-2: same per-step losses and final weights, within tolerance."""
    cmd = [sys.executable, "-m", "bench", "parity", "--impl", "jax,keras-jax", "--devices", "2",
           "--steps", "4", "--batch-size", "100", "--dataset", DATA,
           "--results", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    doc = json.loads((tmp_path / DEVICES_FILE).read_text())
    assert doc["devices"] == [2] and doc["failed"] == []
    verdicts = {p["impl"]: (p["baseline"], p["verdict"]) for p in doc["pairs"]}
    assert verdicts == {"jax x2": ("jax x1", "equivalent"),
                        "keras-jax x2": ("keras-jax x1", "equivalent")}, doc["pairs"]
