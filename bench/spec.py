"""The run specification: the one place every hyperparameter of a run lives."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any


def layers_for_depth(depth: int) -> tuple[int, ...]:
    """Layer sizes for `--depth`: 1 -> (32,), 2 -> (64, 32), 3 -> (128, 64, 32).

    Depths beyond 3 keep doubling the widest layer, e.g. 4 -> (256, 128, 64, 32).
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    return tuple(32 * 2 ** (depth - 1 - i) for i in range(depth))


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines what one run computes.

    Two runs with equal specs (and equal dataset content hash) are comparable;
    the harness keys records by `spec_hash()`.
    """

    impl: str  # registry name, e.g. "keras-jax"
    layer_sizes: tuple[int, ...] = (32,)  # dense stack of both towers; last = output dim
    embedding_dim: int = 32  # dimension of every embedding table
    epochs: int = 30  # the reference trains 30 epochs
    batch_size: int = 1000  # the reference batches 1000 ratings
    learning_rate: float = 0.05  # Adagrad, as the reference
    seed: int = 0  # seeds the shared initial weights (bench.weights.init_weights)
    validation_freq: int = 5  # evaluate top-k accuracy every N epochs, and after the last
    top_k: int = 100  # retrieval depth of the accuracy metric
    jit: str = "auto"  # auto | on | off (Keras jit_compile; native impls always compile)
    device: str = "auto"  # auto | cpu | gpu
    dataset: str = "ml-100k"  # dataset name as `bench data` knows it

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layer_sizes"] = list(self.layer_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        d["layer_sizes"] = tuple(d["layer_sizes"])
        return cls(**d)

    def spec_hash(self) -> str:
        """Stable short hash of the spec (sorted JSON, sha256, 16 hex digits)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def validation_epochs(self) -> list[int]:
        """1-based epochs after which accuracy is evaluated (always the last one)."""
        epochs = [e for e in range(1, self.epochs + 1) if e % self.validation_freq == 0]
        if not epochs or epochs[-1] != self.epochs:
            epochs.append(self.epochs)
        return epochs
