"""Framework-free helpers every implementation shares: numpy only, no framework imports.

They keep the model's fixed facts (masked features, optimiser constants,
batching in row order) in one place, so the implementations cannot drift
apart on them; the weight names and feature order are bench.weights'.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench.data.dataset import CANDIDATE_FEATURES, QUERY_FEATURES, Dataset, Split
from bench.spec import RunSpec

# Keras Adagrad defaults (keras/src/optimizers/adagrad.py): the accumulator
# starts at 0.1 and the update is  p -= lr * g / sqrt(acc + eps)  (eps inside the sqrt).
ADAGRAD_INITIAL_ACCUMULATOR = 0.1
ADAGRAD_EPSILON = 1e-7

# XLA on simulated CPU devices (--devices N on a CPU, jax and keras-jax) deadlocks
# when consecutive steps overlap: a device waiting in one step's all-reduce holds a
# thread of the shared CPU pool another device needs to reach it, and XLA aborts the
# process after 40 s (seen on ml-100k at N = 2 and 4: 4 of 16 study runs; 9 of 10
# one-epoch tries at N = 4). One step in flight at a time avoids it; records say so.
XLA_CPU_STEP_SYNC = ("each step waited for before the next: overlapping steps deadlock "
                     "XLA's all-reduce on simulated CPU devices")

# Multi-valued candidate features: index 0 is padding, masked out of the mean.
MASKED_FEATURES: tuple[str, ...] = ("movie_title_vector", "movie_genres")


def split_arrays(split: Split) -> dict[str, np.ndarray]:
    """Every feature column of a split plus its label under "label" (no copies)."""
    arrays = {name: split.features[name] for name in QUERY_FEATURES + CANDIDATE_FEATURES}
    arrays["label"] = split.label
    return arrays


def query_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The query-tower columns of a feature mapping."""
    return {name: arrays[name] for name in QUERY_FEATURES}


def candidate_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The candidate-tower columns of a feature mapping."""
    return {name: arrays[name] for name in CANDIDATE_FEATURES}


def host_batches(split: Split, batch_size: int) -> list[dict[str, np.ndarray]]:
    """The split's batches in row order (the last one may be short), as numpy slices."""
    arrays = split_arrays(split)
    return [{k: v[s] for k, v in arrays.items()} for s in split.batch_slices(batch_size)]


def steps_to_run(spec: RunSpec, data: Dataset, max_steps: int | None) -> int:
    """Number of training steps of one epoch, optionally capped at `max_steps`."""
    steps = data.train.num_batches(spec.batch_size)
    return steps if max_steps is None else max(0, min(steps, max_steps))


def check_device_request(device: str) -> None:
    """ValueError for a `spec.device` that is not auto, cpu or gpu."""
    if device not in ("auto", "cpu", "gpu"):
        raise ValueError(f"device must be auto, cpu or gpu, got {device!r}")


# The pip extra with the CUDA builds of every framework (pyproject.toml).
GPU_EXTRA = "gpu"

# What jax.devices(platform) raises when that platform has no backend here: RuntimeError,
# or (jax 0.10, JAX_PLATFORMS=cuda as in a GPU run's worker, no NVIDIA device visible)
# the AssertionError of jax._src.xla_bridge.backends, which then has no backend at all.
JAX_NO_BACKEND: tuple[type[Exception], ...] = (RuntimeError, AssertionError)


class NoGpuError(RuntimeError):
    """`--device gpu` where the framework sees no GPU: the run fails before any work.

    Never a silent fall-back to the CPU: a GPU run that trained on the CPU would
    be recorded as a GPU run. `python -m bench doctor` says the same thing for
    every framework at once, without starting a run.
    """


def no_gpu_error(framework: str) -> NoGpuError:
    """The one-line error for `--device gpu` where `framework` sees no GPU."""
    return NoGpuError(
        f"device 'gpu' requested but {framework} sees no GPU here: install the CUDA builds "
        f"with pip install -e '.[{GPU_EXTRA}]' (python -m bench doctor says what is "
        "missing), or use --device cpu"
    )


def effective_k(k: int, data: Dataset) -> int:
    """k capped at the number of candidates (tiny test datasets have fewer than 100)."""
    return min(k, data.num_candidates)
