"""The contract every implementation meets, whatever its framework.

Coarse hooks, so each framework keeps its natural loop (Keras `fit`, a jitted
step or scan, a plain torch loop). Implementations contain no timing,
warm-up, statistics or file I/O: the harness (bench/run/worker.py) owns those and
calls `synchronize` at the end of every timed region.

Life of one run, as the harness drives it:

    data = Impl.prepare(spec, dataset)             # timed as prepare_s (default: dataset)
    impl = Impl(spec, data, initial_weights)      # build; host->device copies here
    for epoch in 1..E:
        if epoch == 1: impl.compile_ahead()        # timed apart, inside epoch 1
        losses = impl.train_epoch(); impl.synchronize()
        if validation epoch: impl.refresh_candidates(); acc = impl.evaluate()
    q = impl.to_device(query_embeddings); idx = impl.retrieve(q, k); impl.synchronize(idx)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np

from bench.data.dataset import Dataset
from bench.spec import RunSpec
from bench.weights import Weights


class LoopHooks:
    """Called by an implementation right around its own loop over batches.

    The harness subclasses it to measure how much of an epoch is the
    implementation's loop and how much is harness overhead. The default does
    nothing. `end` must be called after the last step's result is on the host
    (or after the implementation's own synchronisation).
    """

    def begin(self) -> None:  # noqa: B027 - intentionally empty default hook
        pass

    def end(self) -> None:  # noqa: B027 - intentionally empty default hook
        pass


class RetrievalImpl(ABC):
    """One implementation of the deep retrieval model.

    Args (constructor):
        spec: the run's hyperparameters (layer sizes, batch size, learning rate, ...).
        data: what `prepare` returned: by default the dataset loaded from the cache
            (numpy arrays). The constructor converts everything it will train and
            evaluate on to framework tensors, so no host-to-device copy happens
            inside a timed region.
        weights: initial weights in the neutral layout (bench.weights), loaded
            exactly; every implementation of one seed starts from the same point
            (ignored where `shared_start` is False).
    """

    framework: ClassVar[str]  # "jax" | "tensorflow" | "torch" | "numpy"
    sync_mechanism: ClassVar[str]  # e.g. "jax.block_until_ready", "torch.cuda.synchronize"
    # Whether it starts from the harness's initial weights (bench.weights). False for an
    # implementation with its own initialisers (and split): it ignores `weights`, cannot
    # import any, and is compared with the others by distribution over seeds, not step by step.
    shared_start: ClassVar[bool] = True

    @classmethod
    def prepare(cls, spec: RunSpec, data: Dataset) -> Any:
        """Data preparation the implementation does itself, before it is built.

        The harness times it as `prepare_s` and passes the result to the constructor
        as `data`. The default hands the cache's Dataset on unchanged.
        """
        return data

    def __init__(self, spec: RunSpec, data: Any, weights: Weights) -> None:
        self.spec = spec
        self.data = data
        self.loop_hooks = LoopHooks()

    @abstractmethod
    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        """Train one pass over the train batches in row order (or its first `max_steps`).

        Returns the per-step training losses, float64, shape (steps,): each the
        MSE of that batch before its update. Their mean is the epoch loss.
        """

    @abstractmethod
    def refresh_candidates(self) -> None:
        """Recompute every candidate's embedding and load them into the retrieval index."""

    @abstractmethod
    def evaluate(self) -> float:
        """Top-k accuracy on the test split by the implementation's own metric.

        Uses the candidates as last refreshed. Share of 5-star test ratings
        whose movie is among the user's top `spec.top_k` candidates.
        """

    @abstractmethod
    def candidate_embeddings(self) -> np.ndarray:
        """(num_candidates, out_dim) float32: the candidate tower on every candidate row."""

    @abstractmethod
    def query_embeddings(self, split: Literal["train", "test"]) -> np.ndarray:
        """(rows, out_dim) float32: the query tower on every row of that split."""

    @abstractmethod
    def to_device(self, queries: np.ndarray) -> Any:
        """Convert a (B, out_dim) float32 block of query embeddings to a framework tensor."""

    @abstractmethod
    def retrieve(self, queries: Any, k: int) -> Any:
        """Top-k candidate row indices (B, k), best first, against the refreshed candidates.

        Returns a framework tensor; the harness synchronises and converts it.
        """

    @abstractmethod
    def to_numpy(self, x: Any) -> np.ndarray:
        """A framework tensor as a numpy array (synchronises as a side effect)."""

    @abstractmethod
    def synchronize(self, x: Any = None) -> None:
        """Block until all queued device work (or the work producing `x`) is done."""

    @abstractmethod
    def export_weights(self) -> Weights:
        """All weights in the neutral layout (bench.weights.weight_shapes names and shapes)."""

    @abstractmethod
    def import_weights(self, weights: Weights) -> None:
        """Replace all weights from the neutral layout; optimizer state is reset."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework packages this implementation runs on."""

    @abstractmethod
    def device_name(self) -> str:
        """The device the model runs on, e.g. "cpu" or "cuda:0 (NVIDIA H200)"."""

    def evaluation_targets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the harness's numpy accuracy scores `query_embeddings("test")` against.

        (movie id of each candidate row, movie id of each test row, the test rows'
        5-star mask). The default is the cache's candidates and test split.
        """
        data = self.data
        return (np.asarray(data.candidates["movie_id"]),
                np.asarray(data.test.features["movie_id"]), data.test.five_star())

    def compile_ahead(self) -> str | None:
        """Compile the training programs without running them, where the framework can.

        Called once, at the start of epoch 1's timed region; the harness times it
        as compile_s. Training must then run exactly what was compiled here (no
        step is taken, so the trajectory is unchanged). Returns how it compiled
        (recorded as impl_info.compile_s_method), or None where the framework
        compiles only on the first call (the default): compile_s is then the
        first epoch minus the median steady one, a difference that can be negative.
        """
        return None

    def resolved_options(self) -> dict[str, Any]:
        """Options as actually resolved, e.g. {"jit_compile": True} for `--jit auto`."""
        return {}

    def peak_device_memory_mb(self) -> float | None:
        """The framework's peak device memory, where it reports one (GPU); else None."""
        return None
