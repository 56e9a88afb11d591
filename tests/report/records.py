"""Synthetic run records in the stored schema (bench/record.py), for report tests.

`make_record` builds one `RunRecord` dict with plausible figures whose values
follow its arguments, so tests can plant accuracy gaps, slow implementations,
other machines or dataset hashes and check the report sees them.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from bench.record import RunRecord
from bench.spec import RunSpec
from bench.store import ResultsStore

MACHINE = {"cpu_model": "Test CPU 9000", "cpu_count_logical": 2, "gpus": []}


def make_record(impl: str = "keras-jax", seed: int = 0, layers: tuple[int, ...] = (32,),
                accuracy: float = 0.30, epoch_s: float = 1.0, epochs: int = 10,
                status: str = "ok", dataset_hash: str = "abc123", repeat: int = 0,
                environment: dict[str, Any] | None = None, **spec_overrides: Any
                ) -> dict[str, Any]:
    """One record dict; curves rise to `accuracy`, epochs take about `epoch_s` seconds.

    Args:
        impl: registry name.
        seed: the spec's seed (also seeds the small deterministic jitter).
        layers: layer sizes.
        accuracy: final top-100 accuracy (numpy and impl metric agree to 1e-6).
        epoch_s: steady-state epoch time; the first epoch takes 3x as long.
        epochs: number of epochs.
        status: record status.
        dataset_hash: dataset content hash.
        repeat: repeat index.
        environment: overrides merged into the environment block.
        spec_overrides: other RunSpec fields.
    """
    spec = RunSpec(impl=impl, layer_sizes=layers, epochs=epochs, seed=seed, device="cpu",
                   validation_freq=2, **spec_overrides)
    rng = np.random.default_rng(zlib.crc32(f"{impl}/{seed}/{layers}/{repeat}".encode()))
    times = [3.0 * epoch_s] + [epoch_s * (1 + 0.02 * float(rng.standard_normal()))
                               for _ in range(epochs - 1)]
    val_epochs = spec.validation_epochs()
    val_acc = [accuracy * e / epochs for e in val_epochs]
    steps = 80
    figures = {
        "first_epoch_s": times[0], "train_epoch_s": float(np.median(times[1:])),
        "compile_s": times[0] - float(np.median(times[1:])),
        "train_step_ms": float(np.median(times[1:])) / steps * 1000, "train_steps_per_epoch": steps,
        "train_examples_per_s": 80000 / float(np.median(times[1:])),
        "top100_accuracy_numpy": accuracy, "top100_accuracy_impl": accuracy + 1e-6,
        "retrieve_agreement": 1.0, "peak_rss_mb": 900.0 + seed, "peak_device_memory_mb": None,
    }
    retrieval = {str(b): {"p50_ms": 0.1 * b ** 0.5 * epoch_s, "p95_ms": 0.12 * b ** 0.5 * epoch_s,
                          "p99_ms": 0.15 * b ** 0.5 * epoch_s, "mean_ms": 0.11 * b ** 0.5,
                          "qps": b / (0.1 * b ** 0.5 * epoch_s) * 1000, "calls": 50}
                 for b in (1, 100, 1000)}
    env = {**MACHINE, "python": "3.11.9", "packages": {"numpy": "2.0.0"}, **(environment or {})}
    rec = RunRecord(
        run_id=_run_id(spec, env, dataset_hash, repeat, status),
        status=status, impl=impl, spec=spec.to_dict(), spec_hash=spec.spec_hash(),
        repeat=repeat, dataset={"name": "ml-100k", "content_hash": dataset_hash},
        started_at=f"2026-11-29T10:{seed:02d}:{repeat:02d}+00:00", duration_s=sum(times) + 5,
        figures=figures if status == "ok" else {},
        curve={"epoch": list(range(1, epochs + 1)), "epoch_loss": [0.1 / e for e in
               range(1, epochs + 1)], "epoch_s": times, "loop_s": times,
               "val_epoch": val_epochs, "val_top100_accuracy": val_acc},
        retrieval=retrieval if status == "ok" else {},
        impl_info={"framework": "numpy", "sync_mechanism": "none", "device_name": "cpu",
                   "versions": {"numpy": "2.0.0"}},
        environment=env, git={"commit": "deadbeef", "dirty": False},
    )
    return rec.to_dict()


def _run_id(spec: RunSpec, *parts: Any) -> str:
    """Deterministic and unique per distinct record (tests rerun on identical bytes)."""
    blob = json.dumps([spec.to_dict(), *parts], sort_keys=True)
    return f"{spec.impl}-s{spec.seed}-{zlib.crc32(blob.encode()):08x}"


def write_study(results: Path, records: list[dict[str, Any]]) -> Path:
    """Append `records` to a results store at `results`; returns the directory."""
    store = ResultsStore(results)
    for r in records:
        store.append(r)
    return results


def study(impl_accuracy: dict[str, list[float]], layers: tuple[int, ...] = (32,),
          epoch_s: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Records for several impls, one per seed, with the given final accuracies per seed."""
    return [make_record(impl=impl, seed=seed, layers=layers, accuracy=acc,
                        epoch_s=(epoch_s or {}).get(impl, 1.0))
            for impl, accs in impl_accuracy.items() for seed, acc in enumerate(accs)]
