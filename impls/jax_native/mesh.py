"""Data parallelism for the native JAX step: a one-axis `jax.sharding.Mesh` over N devices.

The training batch is sharded on its leading (row) axis and every parameter,
accumulator and evaluation array replicated (NamedSharding); the jitted step
is the single-device one, and XLA's SPMD partitioner inserts the all-reduce
of the gradients. Not pmap: the program and its maths are the same, only the
placement of its inputs changes.

Only the "rows" layout shards: each of its arrays has one row per rating. The
"packed" layout's candidate entries (impls/_packed.py) are a list per batch
whose length is not the row count, so a data-parallel `jax` run trains on
"rows" batches (jax-padded's layout, the Keras model's arithmetic) instead.
A batch whose rows do not split evenly (the epoch's short last one) is
replicated: every device computes all of it, the same result.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from impls._shared import XLA_CPU_STEP_SYNC

AXIS = "batch"
MECHANISM = "jax.jit over jax.sharding.Mesh (NamedSharding: batch sharded, params replicated)"
COLLECTIVE = "all-reduce of gradients, inserted by XLA's SPMD partitioner"


def make_mesh(devices: int, first: jax.Device) -> Mesh:
    """A one-axis mesh over the first `devices` devices of `first`'s platform."""
    available = jax.devices(first.platform)
    if len(available) < devices:
        raise ValueError(f"--devices {devices}: jax sees {len(available)} {first.platform} "
                         "device(s); on a CPU set XLA_FLAGS=--xla_force_host_platform_device_"
                         f"count={devices} (bench run does)")
    return Mesh(np.array(available[:devices]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def put_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """A rows-layout batch sharded on its row axis (replicated when its rows do not split)."""
    rows = {len(a) for a in batch.values()}
    n = mesh.devices.size
    split = len(rows) == 1 and rows.pop() % n == 0
    sharding = NamedSharding(mesh, PartitionSpec(AXIS)) if split else replicated(mesh)
    return {k: jax.device_put(v, sharding) for k, v in batch.items()}


def simulated(mesh: Mesh) -> bool:
    """Host CPU devices (XLA_FLAGS' forced count), not real accelerators."""
    return bool(mesh.devices.flat[0].platform == "cpu")


def info(mesh: Mesh, global_batch: int, layout: str) -> dict[str, Any]:
    """The record's description of the data-parallel run (resolved_options)."""
    devices = list(mesh.devices.flat)
    n = len(devices)
    out = {"devices": n, "global_batch": global_batch, "per_device_batch": global_batch // n,
           "mechanism": MECHANISM, "collective": COLLECTIVE, "layout": layout,
           "device_list": [str(d) for d in devices], "simulated": simulated(mesh)}
    return {**out, "step_sync": XLA_CPU_STEP_SYNC} if simulated(mesh) else out
