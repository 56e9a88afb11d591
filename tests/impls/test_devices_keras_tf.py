"""keras-tf over 2 devices (tf.distribute.MirroredStrategy on 2 logical CPUs) against one device.

Shared start on the tiny dataset: 4 batches of 100 rows, which split evenly
over 2 replicas, then a short one of 11, which does not (6 and 5 rows). Keras
scales each replica's mean loss by 1/replicas (keras/src/losses/loss.py,
scale_loss_for_distribution), so its objective on an uneven batch is the
replicas' unweighted average of their means, not the batch's mean: the even
steps learn what one device learns, the short one does not. The test asserts
both, so that it fails if Keras changes either. Each run trains in a child
process (`python -m tests.impls.test_devices_keras_tf DEVICES FOLDER`, the
registry's keras-tf environment); the pytest process imports no framework.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import registry
from bench.data.dataset import Dataset
from bench.parity.compare import LOSS_RTOL, load_result, loss_mismatch, save_result, weight_mismatch
from bench.process import worker_env
from bench.spec import RunSpec
from bench.weights import init_weights
from impls import _shared
from tests.fixtures import make_dataset

ROOT = Path(__file__).resolve().parents[2]
EVEN_STEPS = 4
SHORT = 11  # rows of the last batch: 6 and 5 over two replicas

pytestmark = pytest.mark.skipif(not registry.get("keras-tf").installed(),
                                reason="keras/tensorflow not installed")


def _spec(devices: int) -> RunSpec:
    spec = RunSpec(impl="keras-tf", layer_sizes=(32,), batch_size=100, top_k=10, device="cpu")
    return dataclasses.replace(spec, devices=devices)


def _train(devices: int, folder: Path) -> None:
    """From the shared start: the even steps, then (restarted) the whole epoch; save each."""
    data = make_dataset(n_train=EVEN_STEPS * 100 + SHORT, n_test=200, seed=3)
    weights = init_weights(data.vocab, (32,), _spec(1).embedding_dim, seed=11)
    impl = registry.get("keras-tf").load()(_spec(devices), data, weights)
    losses = impl.train_epoch(max_steps=EVEN_STEPS)
    save_result(folder / f"x{devices}-even.npz", losses, impl.export_weights())
    if devices == 1:  # the short batch's rows' losses at the weights it is trained from
        (folder / "short.json").write_text(json.dumps(_short_batch_halves(impl, data)))
    impl.import_weights(weights)  # the shared start again, now through the short batch
    losses = impl.train_epoch()
    save_result(folder / f"x{devices}.npz", losses, impl.export_weights())
    (folder / f"x{devices}.json").write_text(json.dumps(impl.resolved_options()))


def _short_batch_halves(impl: Any, data: Dataset) -> list[float]:
    """Mean squared error of the short batch's first 6 and last 5 rows (the replicas' shares)."""
    import keras

    rows = {k: v[EVEN_STEPS * 100:] for k, v in _shared.split_arrays(data.train).items()}
    label = rows.pop("label")
    out = impl.model({k: keras.ops.convert_to_tensor(v) for k, v in rows.items()})
    q, c = (keras.ops.convert_to_numpy(out[k]) for k in ("query_embeddings",
                                                         "candidate_embeddings"))
    err = ((q * c).sum(axis=1) - label) ** 2
    return [float(err[:6].mean()), float(err[6:].mean())]


def _run_child(devices: int, folder: Path) -> None:
    env = worker_env(registry.get("keras-tf").env,
                     registry.devices_env(registry.get("keras-tf"), "cpu", devices))
    out = subprocess.run([sys.executable, "-m", "tests.impls.test_devices_keras_tf",
                          str(devices), str(folder)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keras_tf_devices")
    for devices in (1, 2):
        _run_child(devices, folder)
    return folder


def test_keras_tf_runs_data_parallel() -> None:
    registry.check_devices(registry.get("keras-tf"), 2)
    assert registry.devices_env(registry.get("keras-tf"), "cpu", 2) == {}  # set in the worker


def test_recorded_mechanism(runs: Path) -> None:
    one = json.loads((runs / "x1.json").read_text())
    assert "data_parallel" not in one
    info = json.loads((runs / "x2.json").read_text())["data_parallel"]
    assert info["mechanism"] == "tf.distribute.MirroredStrategy"
    assert (info["devices"], info["global_batch"], info["per_device_batch"]) == (2, 100, 50)
    assert "CollectiveAllReduce" in info["collective"]
    assert info["simulated"] is True
    assert [d.rsplit("/", 1)[-1] for d in info["device_list"]] == ["device:CPU:0",
                                                                   "device:CPU:1"]


def test_even_batches_learn_what_one_device_learns(runs: Path) -> None:
    """Steps 0..3 (100 rows, 50 + 50): losses and weights within bench parity's tolerances."""
    losses1, weights1 = load_result(runs / "x1-even.npz")
    losses2, weights2 = load_result(runs / "x2-even.npz")
    assert losses1.shape == losses2.shape == (EVEN_STEPS,)
    assert loss_mismatch(losses2, losses1) is None
    assert weight_mismatch(weights2, weights1) is None


def test_uneven_short_batch_parts_from_one_device(runs: Path) -> None:
    """Step 4 (11 rows as 6 + 5): its loss beyond tolerance, and the final weights with it."""
    losses1, weights1 = load_result(runs / "x1.npz")
    losses2, weights2 = load_result(runs / "x2.npz")
    assert losses1.shape == losses2.shape == (EVEN_STEPS + 1,)
    assert loss_mismatch(losses2[:EVEN_STEPS], losses1[:EVEN_STEPS]) is None  # the restart too
    gap = abs(losses2[EVEN_STEPS] - losses1[EVEN_STEPS]) / losses1[EVEN_STEPS]
    assert gap > 100 * LOSS_RTOL, gap
    assert weight_mismatch(weights2, weights1) is not None
    # The cause: one device takes the mean of 11 rows, Keras on 2 replicas the replicas'
    # unweighted average of their means, (mean_6 + mean_5) / 2.
    six, five = json.loads((runs / "short.json").read_text())
    assert loss_mismatch(losses1[EVEN_STEPS:], np.array([(6 * six + 5 * five) / 11])) is None
    assert loss_mismatch(losses2[EVEN_STEPS:], np.array([(six + five) / 2])) is None


if __name__ == "__main__":
    _train(int(sys.argv[1]), Path(sys.argv[2]))


def test_an_uneven_evaluation_batch_fails_at_build_not_after_training(tmp_path: Path) -> None:
    """Keras's evaluate under MirroredStrategy cannot run a last batch that does not split:
    the run fails in its build phase, before any training (impls/keras_model/_backend.py)."""
    cmd = [sys.executable, "-m", "bench", "run", "--impl", "keras-tf", "--devices", "2",
           "--epochs", "1", "--steps-per-epoch", "1", "--eval-rows", "101", "--batch-size", "100",
           "--depth", "1", "--dataset", "synthetic:users=100,movies=150,ratings=6000,seed=0",
           "--cache-dir", str(tmp_path / "cache"), "--results", str(tmp_path / "runs"),
           "--no-progress"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    record = json.loads((tmp_path / "runs" / "records.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "failed"
    assert "last batch (1 of 101 rows) does not split over the devices" in record["error"]
    assert "train_epoch_s" not in record["figures"]  # refused before training
