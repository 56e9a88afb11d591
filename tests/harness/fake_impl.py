"""A tiny but real numpy implementation of the retrieval model, plus fault modes.

It lets the CLI, runner, worker and store be tested end to end without any
framework: `--impl tests.harness.fake_impl:FakeImpl`. Two towers (embeddings,
masked means, dense stack with relu between layers), dot-product MSE against
the label, hand-written backprop and Adagrad, all in float32 numpy.

The fault subclasses misbehave in epoch FAULT_EPOCH: raise, segfault
(SIGSEGV sent to itself), abort, or hang forever.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Literal

import numpy as np

from bench.contract import RetrievalImpl
from bench.data.dataset import Dataset, Split
from bench.metrics import top_k_accuracy, top_k_indices
from bench.spec import RunSpec
from bench.weights import Weights, check_weights, weight_shapes

QUERY = {
    "user_id": "query/user_embedding",
    "user_gender": "query/gender_embedding",
    "raw_user_age": "query/age_embedding",
    "user_gender_X_raw_user_age": "query/gender_x_age_embedding",
    "user_occupation_label": "query/occupation_embedding",
}
CANDIDATE = {
    "movie_id": "candidate/movie_embedding",
    "movie_title_vector": "candidate/title_embedding",
    "movie_genres": "candidate/genres_embedding",
}
FAULT_EPOCH = 2


class FakeImpl(RetrievalImpl):
    """The retrieval model in numpy (see the module docstring)."""

    framework = "numpy"
    sync_mechanism = "none (numpy is synchronous)"

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        super().__init__(spec, data, weights)
        self.epoch = 0
        self.import_weights(weights)
        self._candidates: np.ndarray | None = None

    # -- the model -------------------------------------------------------------------
    def _embed(self, tower: dict[str, str], feats: dict[str, np.ndarray]) -> tuple:
        parts, cache = [], []
        for feat, name in tower.items():
            ids = feats[feat]
            table = self.w[name]
            if ids.ndim == 1:
                parts.append(table[ids])
                cache.append((name, ids, None))
            else:  # masked mean over the padded ids
                mask = (ids > 0).astype(np.float32)
                count = np.maximum(mask.sum(1, keepdims=True), 1.0)
                parts.append((table[ids] * mask[..., None]).sum(1) / count)
                cache.append((name, ids, mask / count))
        return np.concatenate(parts, axis=1), cache

    def _tower(self, prefix: str, tower: dict[str, str], feats: dict[str, np.ndarray]) -> tuple:
        x, emb_cache = self._embed(tower, feats)
        acts = [x]
        for i in range(len(self.spec.layer_sizes)):
            z = acts[-1] @ self.w[f"{prefix}/dense_{i}/kernel"] + self.w[f"{prefix}/dense_{i}/bias"]
            acts.append(np.maximum(z, 0) if i < len(self.spec.layer_sizes) - 1 else z)
        return acts, emb_cache

    def _backward(self, prefix: str, acts: list, emb_cache: list, grad: np.ndarray,
                  grads: dict[str, np.ndarray]) -> None:
        for i in reversed(range(len(self.spec.layer_sizes))):
            if i < len(self.spec.layer_sizes) - 1:
                grad = grad * (acts[i + 1] > 0)
            grads[f"{prefix}/dense_{i}/kernel"] = acts[i].T @ grad
            grads[f"{prefix}/dense_{i}/bias"] = grad.sum(0)
            grad = grad @ self.w[f"{prefix}/dense_{i}/kernel"].T
        dim = self.spec.embedding_dim
        for j, (name, ids, scale) in enumerate(emb_cache):
            g = grad[:, j * dim : (j + 1) * dim]
            dense = np.zeros_like(self.w[name])
            if scale is None:
                np.add.at(dense, ids, g)
            else:
                np.add.at(dense, ids, g[:, None, :] * scale[..., None])
            grads[name] = dense

    def _step(self, feats: dict[str, np.ndarray], label: np.ndarray) -> float:
        q_acts, q_cache = self._tower("query", QUERY, feats)
        c_acts, c_cache = self._tower("candidate", CANDIDATE, feats)
        q, c = q_acts[-1], c_acts[-1]
        err = (q * c).sum(1) - label
        grads: dict[str, np.ndarray] = {}
        d_pred = (2.0 / label.shape[0]) * err[:, None]
        self._backward("query", q_acts, q_cache, d_pred * c, grads)
        self._backward("candidate", c_acts, c_cache, d_pred * q, grads)
        for name, g in grads.items():  # Adagrad, Keras's constants
            self.acc[name] += g * g
            self.w[name] -= self.spec.learning_rate * g / np.sqrt(self.acc[name] + 1e-7)
        return float(np.mean(err**2))

    # -- the contract ----------------------------------------------------------------
    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        self.epoch += 1
        self.fault()
        split = self.data.train
        losses = []
        self.loop_hooks.begin()
        for i, s in enumerate(split.batch_slices(self.spec.batch_size)):
            if max_steps is not None and i >= max_steps:
                break
            feats = {k: v[s] for k, v in split.features.items()}
            losses.append(self._step(feats, split.label[s]))
        self.loop_hooks.end()
        return np.asarray(losses, dtype=np.float64)

    def fault(self) -> None:
        """Misbehave here in the fault subclasses."""

    def refresh_candidates(self) -> None:
        self._candidates = self.candidate_embeddings()

    def evaluate(self) -> float:
        assert self._candidates is not None, "refresh_candidates first"
        test: Split = self.data.test
        top = top_k_indices(self.query_embeddings("test"), self._candidates, self.spec.top_k)
        return top_k_accuracy(
            top, self.data.candidates["movie_id"], test.features["movie_id"], test.five_star()
        )

    def candidate_embeddings(self) -> np.ndarray:
        acts, _ = self._tower("candidate", CANDIDATE, dict(self.data.candidates))
        return acts[-1].astype(np.float32)

    def query_embeddings(self, split: Literal["train", "test"]) -> np.ndarray:
        feats = getattr(self.data, split).features
        return self._tower("query", QUERY, dict(feats))[0][-1].astype(np.float32)

    def to_device(self, queries: np.ndarray) -> Any:
        return np.array(queries, dtype=np.float32)

    def retrieve(self, queries: Any, k: int) -> Any:
        assert self._candidates is not None, "refresh_candidates first"
        return top_k_indices(queries, self._candidates, k)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def synchronize(self, x: Any = None) -> None:
        return None

    def export_weights(self) -> Weights:
        return {k: v.copy() for k, v in self.w.items()}

    def import_weights(self, weights: Weights) -> None:
        expected = weight_shapes(self.data.vocab, self.spec.layer_sizes, self.spec.embedding_dim)
        check_weights(weights, expected)
        self.w = {k: np.array(v, dtype=np.float32) for k, v in weights.items()}
        self.acc = {k: np.full_like(v, 0.1) for k, v in self.w.items()}

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def device_name(self) -> str:
        return "cpu"


class RaisingImpl(FakeImpl):
    """Raises RuntimeError in epoch FAULT_EPOCH."""

    def fault(self) -> None:
        if self.epoch == FAULT_EPOCH:
            raise RuntimeError("fake failure in epoch 2")


class SegfaultImpl(FakeImpl):
    """Kills itself with SIGSEGV in epoch FAULT_EPOCH (a native crash)."""

    def fault(self) -> None:
        if self.epoch == FAULT_EPOCH:
            os.kill(os.getpid(), signal.SIGSEGV)


class AbortImpl(FakeImpl):
    """Calls os.abort() (SIGABRT) in epoch FAULT_EPOCH."""

    def fault(self) -> None:
        if self.epoch == FAULT_EPOCH:
            os.abort()


class HangingImpl(FakeImpl):
    """Never returns from epoch FAULT_EPOCH."""

    def fault(self) -> None:
        if self.epoch == FAULT_EPOCH:
            while True:
                time.sleep(1)


class TeardownHangImpl(FakeImpl):
    """Works, but leaves a non-daemon thread that would block interpreter exit forever."""

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        super().__init__(spec, data, weights)
        threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()


class OwnStartImpl(FakeImpl):
    """Declares its own split and initial weights (shared_start False), as keras-reference does."""

    shared_start = False
