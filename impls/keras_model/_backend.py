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

    def __init__(self, device: str) -> None:
        _shared.check_device_request(device)
        self.gpu = self._has_gpu()
        if device == "gpu" and not self.gpu:
            raise _shared.no_gpu_error(f"keras ({keras.backend.backend()} backend)")
        self.device = "gpu:0" if self.gpu and device != "cpu" else "cpu:0"

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

    def _has_gpu(self) -> bool:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))

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



def for_current_backend(device: str) -> Backend:
    """The quirks class of the Keras backend this process runs (KERAS_BACKEND)."""
    classes = {"jax": _Jax, "torch": _Torch, "tensorflow": _TensorFlow}
    backend = keras.backend.backend()
    if backend not in classes:
        raise RuntimeError(f"unsupported Keras backend {backend!r}; use jax, tensorflow or torch")
    return classes[backend](device)


def iterate(fit_input: Any) -> Iterator[Batch]:
    """The batches of a fit input, for building and checks (not a training path)."""
    if isinstance(fit_input, _Batches):
        yield from (fit_input[i] for i in range(len(fit_input)))
    else:
        yield from fit_input
