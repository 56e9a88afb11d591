"""The timed phases of one run, as the worker drives an implementation.

Each function fills part of a RunRecord in place, so a run that fails half-way
still records what it measured. Every timed region ends with the
implementation's own synchronisation; host->device copies (`impl.to_device`)
stay outside timed regions.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.contract import RetrievalImpl
from bench.data.dataset import Dataset
from bench.metrics import top_k_accuracy, top_k_indices
from bench.record import RunRecord
from bench.spec import RunSpec
from bench.stats import spread
from bench.timing import (
    HarnessLoopHooks,
    LatencyResult,
    measure_calls,
    median_or_none,
    now_ns,
    seconds,
    timed,
)

RETRIEVE_BATCH_SIZES: tuple[int, ...] = (1, 100, 1000)
RETRIEVE_WARMUP = 3  # untimed calls per batch size (compilation, caches)
RETRIEVE_MIN_CALLS = 5
RETRIEVE_MAX_CALLS = 1000
RETRIEVE_POOL = 8  # distinct query blocks per batch size, converted before timing

# What compile_s is where the implementation cannot compile ahead of time
# (RetrievalImpl.compile_ahead returns None): the first epoch minus the median
# steady epoch, a difference (negative when a loaded machine slows steady epochs
# more than the first), not a measurement. Stored in every record's impl_info.
COMPILE_S_METHOD = "first_epoch_minus_median_steady"

Progress = Callable[..., None]


def _new_curve() -> dict[str, list[Any]]:
    keys = ("epoch", "epoch_loss", "epoch_s", "loop_s", "val_epoch", "val_top100_accuracy")
    return {k: [] for k in keys}


def _validate(impl: RetrievalImpl, rec: RunRecord, epoch: int, times: dict[str, list]) -> float:
    """Refresh the candidates and evaluate (each phase timed and synchronised)."""
    _, refresh_s = timed(lambda: (impl.refresh_candidates(), impl.synchronize()))
    accuracy, evaluate_s = timed(impl.evaluate)  # a Python float: already on the host
    times["refresh"].append(refresh_s)
    times["evaluate"].append(evaluate_s)
    rec.curve["val_epoch"].append(epoch)
    rec.curve["val_top100_accuracy"].append(float(accuracy))
    return float(accuracy)


def train(impl: RetrievalImpl, data: Dataset, rec: RunRecord, progress: Progress) -> None:
    """All epochs: each `train_epoch` + `synchronize` timed, validation between them.

    Args:
        impl: the built implementation.
        data: its dataset (for the number of training rows).
        rec: the record to fill (curve and training figures).
        progress: called as progress("epoch", epoch=..., ...) after every epoch.
    """
    spec = impl.spec
    hooks = HarnessLoopHooks()
    impl.loop_hooks = hooks
    rec.curve = _new_curve()
    val_epochs = set(spec.validation_epochs())
    times: dict[str, list] = {"refresh": [], "evaluate": [], "steps": [], "compile": []}
    for epoch in range(1, spec.epochs + 1):
        hooks.take()
        start = now_ns()
        if epoch == 1:  # inside epoch 1, so first_epoch_s includes compilation either way
            times["compile"].append(timed(impl.compile_ahead))
        losses = impl.train_epoch(max_steps=spec.steps_per_epoch)  # None: every batch
        impl.synchronize()
        epoch_s = seconds(start, now_ns())
        losses = np.asarray(losses, dtype=np.float64)
        times["steps"].append(int(losses.shape[0]))
        rec.curve["epoch"].append(epoch)
        rec.curve["epoch_loss"].append(float(losses.mean()) if losses.size else None)
        rec.curve["epoch_s"].append(epoch_s)
        rec.curve["loop_s"].append(hooks.take())
        accuracy = _validate(impl, rec, epoch, times) if epoch in val_epochs else None
        progress(
            "epoch", epoch=epoch, epochs=spec.epochs, loss=rec.curve["epoch_loss"][-1],
            epoch_s=epoch_s, accuracy=accuracy,
        )
    _derive_training_figures(rec, times, _rows_per_epoch(spec, len(data.train)))


def _rows_per_epoch(spec: RunSpec, rows: int) -> int:
    """Training rows one epoch sees: all, or the first `steps_per_epoch` batches' rows."""
    cap = spec.steps_per_epoch
    return rows if cap is None else min(rows, cap * spec.batch_size)


def _derive_training_figures(rec: RunRecord, times: dict[str, list], rows: int) -> None:
    f, curve = rec.figures, rec.curve
    steady, steady_loop = curve["epoch_s"][1:], curve["loop_s"][1:]
    s = spread(steady)
    median, low, high, iqr = (s.median, s.low, s.high, s.iqr) if s.n else (None,) * 4
    f["first_epoch_s"] = curve["epoch_s"][0]
    f["train_epoch_s"] = median
    f["train_epoch_min_s"], f["train_epoch_max_s"] = low, high
    f["train_epoch_iqr_s"] = iqr
    f["steady_epochs"] = len(steady)
    method, compile_s = times["compile"][0] if times["compile"] else (None, None)
    if method is not None:  # measured directly, ahead of the first step
        f["compile_s"] = compile_s
    else:
        f["compile_s"] = None if median is None else f["first_epoch_s"] - median
    rec.impl_info["compile_s_method"] = method or COMPILE_S_METHOD
    steps = times["steps"][-1]
    f["train_steps_per_epoch"] = steps
    f["train_step_ms"] = median / steps * 1e3 if median and steps else None
    f["train_examples_per_s"] = rows / median if median else None
    f["loop_epoch_s"] = median_or_none(steady_loop)
    ratios = [h / lp for h, lp in zip(steady, steady_loop, strict=True) if lp]
    f["harness_overhead_ratio"] = median_or_none(ratios)
    f["refresh_s"] = median_or_none(times["refresh"])
    f["evaluate_s"] = median_or_none(times["evaluate"])
    f["top100_accuracy_impl"] = curve["val_top100_accuracy"][-1]


def numpy_accuracy(impl: RetrievalImpl, spec: RunSpec, rec: RunRecord) -> tuple:
    """Top-k accuracy from the exported embeddings, in numpy (the independent check).

    Scored against `impl.evaluation_targets()`: the cache's candidates and test split,
    or an implementation's own (one that splits the ratings itself).

    Returns (test query embeddings, candidate embeddings, numpy's top-k rows) for the
    retrieval phase and `--save-embeddings`.
    """
    start = now_ns()
    queries = np.asarray(impl.query_embeddings("test"), dtype=np.float32)
    candidates = np.asarray(impl.candidate_embeddings(), dtype=np.float32)
    top = top_k_indices(queries, candidates, spec.top_k)  # a NaN score ranks last
    accuracy = top_k_accuracy(top, *impl.evaluation_targets())
    rec.figures["numpy_eval_s"] = seconds(start, now_ns())
    rec.figures["top100_accuracy_numpy"] = accuracy
    impl_acc = rec.figures.get("top100_accuracy_impl")
    rec.figures["top100_accuracy_abs_diff"] = (
        abs(impl_acc - accuracy) if impl_acc is not None else None
    )
    return queries, candidates, top


def _blocks(queries: np.ndarray, batch: int, count: int) -> list[np.ndarray]:
    """`count` distinct (batch, d) blocks of test queries, wrapping around when short."""
    n = queries.shape[0]
    return [
        np.take(queries, np.arange(i * batch, (i + 1) * batch) % n, axis=0).copy()
        for i in range(count)
    ]


def retrieval(
    impl: RetrievalImpl, queries: np.ndarray, numpy_top: np.ndarray, spec: RunSpec,
    rec: RunRecord, budget_s: float,
) -> None:
    """Latency of `impl.retrieve` (top-k) at batch sizes 1, 100, 1000, after warm-up."""
    for batch in RETRIEVE_BATCH_SIZES:
        pool = [impl.to_device(b) for b in _blocks(queries, batch, RETRIEVE_POOL)]
        impl.synchronize()

        def call(i: int, pool: list = pool) -> None:
            impl.synchronize(impl.retrieve(pool[i % len(pool)], spec.top_k))

        times = measure_calls(call, RETRIEVE_WARMUP, RETRIEVE_MIN_CALLS, RETRIEVE_MAX_CALLS,
                              budget_s)
        summary = LatencyResult(batch, times).summary()
        rec.retrieval[str(batch)] = summary
        for key in ("p50_ms", "p95_ms", "p99_ms", "qps"):
            rec.figures[f"retrieve_{key}_b{batch}"] = summary[key]
    overlap = _overlap(impl, queries, numpy_top, spec.top_k)
    rec.figures["retrieve_agreement"] = float(np.mean(overlap))
    rec.figures["retrieve_identical_share"] = float(np.mean(overlap == 1.0))


def _overlap(impl: RetrievalImpl, queries: np.ndarray, numpy_top: np.ndarray, k: int) -> np.ndarray:
    """Per query (first 1000): share of numpy's top-k candidates impl.retrieve also returns."""
    n = min(1000, queries.shape[0])
    got = impl.to_numpy(impl.retrieve(impl.to_device(queries[:n]), k))
    want = numpy_top[:n]
    return np.array(
        [len(np.intersect1d(g, w)) / w.shape[0] for g, w in zip(got, want, strict=True)]
    )


def memory(impl: RetrievalImpl, rec: RunRecord) -> None:
    """Peak host RSS of this process and the framework's peak device memory."""
    rec.figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rec.figures["peak_device_memory_mb"] = impl.peak_device_memory_mb()
