"""One implementation's shared-start parity run (`python -m bench.parity.worker JOB.json`).

Started by bench/parity/runner.py with the implementation's environment; here,
and only here, its framework is imported. It builds the implementation from
the shared initial-weights file, trains the first `steps` batches of
data.train in row order (train_epoch(max_steps)), and writes the per-step
losses and exported final weights to the job's `out` file (bench.parity's
npz layout). Exit 0 when written, 1 on any failure (traceback in the log).

Job file keys: impl (registry name or "module:Class"), spec (RunSpec dict),
dataset (bench.data.cache.DatasetRef), weights (path of the initial weights),
steps, out.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.cache import DatasetRef, load_ref
from bench.parity.compare import save_result
from bench.process import child_main
from bench.registry import entry_for
from bench.spec import RunSpec
from bench.weights import load_weights

log = logging.getLogger("bench.parity.worker")


def run(job: dict[str, Any]) -> None:
    """Build, train `steps` steps from the shared weights, write losses and final weights."""
    spec = RunSpec.from_dict(job["spec"])
    data = load_ref(DatasetRef.from_dict(job["dataset"]))  # verified by the parent
    steps = int(job["steps"])
    available = -(-len(data.train) // spec.batch_size)
    if steps > available:
        raise ValueError(f"{steps} steps asked, data.train has {available} batches")
    cls = entry_for(job["impl"]).load()
    impl = cls(spec, data, load_weights(Path(job["weights"])))
    losses = np.asarray(impl.train_epoch(max_steps=steps), np.float64)
    impl.synchronize()
    if losses.shape != (steps,):
        raise ValueError(f"train_epoch(max_steps={steps}) returned {losses.shape} losses")
    save_result(Path(job["out"]), losses, impl.export_weights())
    log.info("%s: %d steps, loss %.6f -> %.6f", job["impl"], steps, losses[0], losses[-1])


def main(argv: list[str]) -> int:
    """Run the job file named in `argv`; 0 once its result is written."""
    run(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    child_main(lambda events: main(sys.argv[1:]))
