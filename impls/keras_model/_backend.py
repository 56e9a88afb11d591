"""Every Keras-backend quirk of the Keras implementation, behind one dispatcher.

The model is backend-agnostic; what is not: how batches are fed to `fit`
cheaply, how to wait for the device, which GPU there is, and which packages
to report. `for_current_backend()` picks the matching class once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from impls import _shared

Batch = tuple[dict[str, Any], Any]  # (features, label) as backend tensors


class _Batches(keras.utils.PyDataset):
    """Batches made once as backend tensors; Keras iterates them as they are (no copies)."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self._batches = list(batches)

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int) -> Batch:
        return self._batches[index]


class Backend:
    """The jax and torch behaviour; tensorflow overrides what differs."""

    name = "base"
    packages: tuple[str, ...] = ("keras", "keras_rs")

    def __init__(self, device: str, devices: int = 1) -> None:
        _shared.check_device_request(device)
        self.gpu = self._has_gpu()
        if device == "gpu" and not self.gpu:
            raise _shared.no_gpu_error(f"keras ({keras.backend.backend()} backend)")
        self.device = "gpu:0" if self.gpu and device != "cpu" else "cpu:0"
        self.devices = devices
        if devices > 1:
            self._data_parallel(devices)

    def _data_parallel(self, devices: int) -> None:
        """Set up one run over `devices` devices; refused where Keras has no mechanism."""
        raise ValueError(f"--devices {devices}: no data-parallel path for Keras on the "
                         f"{self.name} backend here")

    def data_parallel_info(self, global_batch: int) -> dict[str, Any]:
        """The record's description of a data-parallel run (resolved_options); {} on one."""
        return {}

    def fit_callbacks(self) -> list[keras.callbacks.Callback]:
        """Callbacks every `fit` of the run takes (none but where a backend needs one)."""
        return []

    def check_evaluation(self, rows: int, batch_size: int) -> None:
        """ValueError, at build, for evaluation batches the backend cannot run (none here)."""

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Context that places tensors and computation on the chosen device."""
        return keras.device(self.device)

    def to_tensors(self, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {k: keras.ops.convert_to_tensor(v) for k, v in arrays.items()}

    def fit_input(self, arrays: Mapping[str, np.ndarray], batch_size: int) -> Any:
        """What `fit`/`evaluate` get: the split's batches in row order, made as tensors once."""
        n = len(arrays["label"])
        made = []
        for start in range(0, n, batch_size):
            t = self.to_tensors({k: v[start : start + batch_size] for k, v in arrays.items()})
            label = t.pop("label")
            made.append((t, label))
        return _Batches(made)

    def synchronize(self, x: Any) -> None:
        raise NotImplementedError

    def device_name(self) -> str:
        return "cpu"

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {p: version(p.replace("_", "-")) for p in self.packages}

    def _has_gpu(self) -> bool:
        raise NotImplementedError


class _Jax(Backend):
    name = "jax"
    packages = ("keras", "keras_rs", "jax", "jaxlib")
    distribution: Any = None  # keras.distribution.DataParallel of a run over several devices

    def _data_parallel(self, devices: int) -> None:
        """keras.distribution.DataParallel over the first `devices` devices of the platform."""
        found = keras.distribution.list_devices("gpu" if self.device.startswith("gpu")
                                                else "cpu")
        if len(found) < devices:
            raise ValueError(f"--devices {devices}: Keras sees {len(found)} device(s); on a CPU "
                             f"set XLA_FLAGS=--xla_force_host_platform_device_count={devices}")
        self.distribution = keras.distribution.DataParallel(devices=found[:devices])

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        if self.distribution is not None:  # variables replicated, not pinned to one device
            return self.distribution.scope()  # type: ignore[no-any-return]
        return super().scope()

    def fit_input(self, arrays: Mapping[str, np.ndarray], batch_size: int) -> Any:
        """The batches, each built already sharded over the distribution's batch axis.

        Keras distributes every batch it is fed each step; one already placed as its
        layout asks is kept as it is (device_put is a no-op), where a single-device
        array would be resharded every step (measured 9x slower on CPU).
        """
        if self.distribution is None:
            return super().fit_input(arrays, batch_size)
        import jax

        made = []
        for start in range(0, len(arrays["label"]), batch_size):
            batch = {k: v[start : start + batch_size] for k, v in arrays.items()}
            rows = len(batch["label"])
            if rows % self.devices:
                raise ValueError(f"--devices {self.devices}: a batch of {rows} rows (the last of "
                                 f"{len(arrays['label'])}) does not split over the devices")
            t = {k: jax.device_put(v, self.distribution.get_data_layout(v.shape).backend_layout)
                 for k, v in batch.items()}
            made.append((t, t.pop("label")))
        return _Batches(made)

    def data_parallel_info(self, global_batch: int) -> dict[str, Any]:
        if self.distribution is None:
            return {}
        devices = list(self.distribution.device_mesh.devices.flat)
        return {"devices": self.devices, "global_batch": global_batch,
                "per_device_batch": global_batch // self.devices,
                "mechanism": "keras.distribution.DataParallel",
                "collective": "all-reduce of gradients, inserted by XLA's SPMD partitioner "
                              "(jax.jit over the distribution's mesh)",
                "device_list": [str(d) for d in devices],
                "simulated": not self.device.startswith("gpu"),
                **({"step_sync": _shared.XLA_CPU_STEP_SYNC} if self._step_sync() else {})}

    def _step_sync(self) -> bool:
        return self.distribution is not None and not self.device.startswith("gpu")

    def fit_callbacks(self) -> list[keras.callbacks.Callback]:
        return [_WaitForEachStep()] if self._step_sync() else []

    def _has_gpu(self) -> bool:
        import jax

        try:  # a GPU run's JAX_PLATFORMS=cuda raises here when jax can reach no GPU
            return any(d.platform == "gpu" for d in jax.devices())
        except _shared.JAX_NO_BACKEND:
            return False

    def synchronize(self, x: Any) -> None:
        import jax

        jax.block_until_ready(x)

    def device_name(self) -> str:
        import jax

        d = jax.devices("gpu" if self.device.startswith("gpu") else "cpu")[0]
        return "cpu" if d.platform == "cpu" else f"gpu:{d.id} ({d.device_kind})"


class _Torch(Backend):
    name = "torch"
    packages = ("keras", "keras_rs", "torch")

    def _data_parallel(self, devices: int) -> None:
        raise ValueError(f"--devices {devices}: Keras offers no distribution on the torch "
                         "backend (keras/src/backend/torch has no distribution_lib)")

    def _has_gpu(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        # "cpu", not "cpu:0": Keras moves each new Parameter with .to(device), and a
        # tensor on "cpu" moved to "cpu:0" comes back as a copy, a non-leaf that
        # never receives gradients ("No gradients provided for any variable").
        return keras.device("cpu" if self.device.startswith("cpu") else "cuda:0")

    def synchronize(self, x: Any) -> None:
        import torch

        if self.device.startswith("gpu"):
            torch.cuda.synchronize()

    def device_name(self) -> str:
        import torch

        if self.device.startswith("gpu"):
            return f"cuda:0 ({torch.cuda.get_device_name(0)})"
        return "cpu"


class _TensorFlow(Backend):
    name = "tensorflow"
    packages = ("keras", "keras_rs", "tensorflow")
    strategy: Any = None  # tf.distribute.MirroredStrategy of a run over several devices

    def _data_parallel(self, devices: int) -> None:
        """tf.distribute.MirroredStrategy over `devices` GPUs, or logical CPUs on a CPU.

        What Keras 3 supports on TensorFlow (keras.io's "distributed training with
        TensorFlow" guide): the model built and compiled in the strategy's scope, so
        Keras's TF trainer runs each step through `strategy.run` and distributes the
        tf.data input. keras.distribution is a prototype on TF (its distribution_lib
        says DO NOT USE) and changes nothing there. Left as Keras does it: a short
        batch that does not split evenly (tf.distribute gives 11 rows as 6 + 5)
        is weighted wrong, each replica's mean scaled by 1/replicas
        (keras/src/losses/loss.py, scale_loss_for_distribution); `bench parity
        --devices N` reports it.
        """
        import tensorflow as tf

        kind = "GPU" if self.device.startswith("gpu") else "CPU"
        if kind == "CPU":
            _split_cpu(devices)
        found = tf.config.list_logical_devices(kind)
        if len(found) < devices:
            raise ValueError(f"--devices {devices}: TensorFlow sees {len(found)} {kind} device(s)")
        self.strategy = tf.distribute.MirroredStrategy([d.name for d in found[:devices]])

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        if self.strategy is not None:  # variables mirrored on every device
            return self.strategy.scope()  # type: ignore[no-any-return]
        return super().scope()

    def data_parallel_info(self, global_batch: int) -> dict[str, Any]:
        if self.strategy is None:
            return {}
        # TF's choice for MirroredStrategy's float reductions (CollectiveAllReduce by
        # default); read from the strategy, which has no public accessor for it.
        ops = getattr(self.strategy.extended, "_cross_device_ops", None)
        return {"devices": self.devices, "global_batch": global_batch,
                "per_device_batch": global_batch // self.devices,
                "mechanism": "tf.distribute.MirroredStrategy",
                "collective": f"all-reduce of gradients by tf.distribute "
                              f"{type(ops).__name__ if ops else 'cross-device ops'}, "
                              "Keras's TF trainer under strategy.run",
                "device_list": list(self.strategy.extended.worker_devices),
                "simulated": not self.device.startswith("gpu")}

    def _has_gpu(self) -> bool:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))

    def check_evaluation(self, rows: int, batch_size: int) -> None:
        """Under MirroredStrategy, Keras's evaluate fails on a last batch that does not split
        evenly over the devices (TF's AddN on unequal per-replica shapes), after all of
        training: refused at build instead."""
        last = rows % batch_size
        if self.strategy is not None and last % self.devices:
            raise ValueError(f"--devices {self.devices}: the evaluated test split's last batch "
                             f"({last} of {rows} rows) does not split over the devices, which "
                             "Keras's evaluate on TF cannot run; choose --eval-rows to fit")

    def fit_input(self, arrays: Mapping[str, np.ndarray], batch_size: int) -> Any:
        """A cached tf.data pipeline of the batches (the reference's `.batch().cache()`).

        A PyDataset would reach TF through a Python generator, a copy per step;
        tf.data runs inside the compiled train function. The cache is filled
        here by one pass, so no epoch batches or converts anything.
        """
        import tensorflow as tf

        tensors = self.to_tensors(arrays)
        label = tensors.pop("label")
        ds = tf.data.Dataset.from_tensor_slices((tensors, label)).batch(batch_size).cache()
        for _ in ds:  # fill the cache now, outside any timed region
            pass
        return ds

    def synchronize(self, x: Any) -> None:
        # Reading a value back forces every op it depends on to finish.
        for t in keras.tree.flatten(x):
            np.asarray(t)

    def device_name(self) -> str:
        import tensorflow as tf

        if self.device.startswith("gpu"):
            gpu = tf.config.list_physical_devices("GPU")[0]
            details = tf.config.experimental.get_device_details(gpu)
            return f"gpu:0 ({details.get('device_name', 'GPU')})"
        return "cpu"


class _WaitForEachStep(keras.callbacks.Callback):
    """Waits for every variable of the step that just ran (_shared.XLA_CPU_STEP_SYNC).

    Overriding on_train_batch_end also turns off Keras's asynchronous callback dispatch
    (keras/src/callbacks/callback_list.py), so this runs before the next step starts.
    """

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        import jax

        jax.block_until_ready([v.value for v in self.model.variables])


def _split_cpu(devices: int) -> None:
    """Make the physical CPU `devices` logical TF devices (only before TF initialises)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) == devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError as e:  # TF initialised: its devices are fixed for the process
        raise ValueError(f"--devices {devices}: TensorFlow's CPU devices are already fixed "
                         f"in this process ({e})") from None


def for_current_backend(device: str, devices: int = 1) -> Backend:
    """The quirks class of the Keras backend this process runs (KERAS_BACKEND)."""
    classes = {"jax": _Jax, "torch": _Torch, "tensorflow": _TensorFlow}
    backend = keras.backend.backend()
    if backend not in classes:
        raise RuntimeError(f"unsupported Keras backend {backend!r}; use jax, tensorflow or torch")
    return classes[backend](device, devices)


def iterate(fit_input: Any) -> Iterator[Batch]:
    """The batches of a fit input, for building and checks (not a training path)."""
    if isinstance(fit_input, _Batches):
        yield from (fit_input[i] for i in range(len(fit_input)))
    else:
        yield from fit_input
