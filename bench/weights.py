"""The neutral weight layout every implementation exports and imports.

One npz-compatible mapping `name -> float32 array`, shapes as Keras stores them
(Embedding: (rows, dim); Dense kernel: (in, out); Dense bias: (out,)). Native
PyTorch transposes its Linear weights on the way in and out.

`init_weights` draws Keras's default initialisers in numpy (Embedding:
uniform(-0.05, 0.05); Dense: Glorot uniform kernel, zero bias) from one seed,
so that every implementation of one seed starts from the same point: accuracy
differences then come from the frameworks' numerics, not their RNGs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bench.data.dataset import Vocabulary

Weights = dict[str, np.ndarray]


def embedding_rows(vocab: Vocabulary) -> dict[str, int]:
    """Rows of every embedding table, named `<tower>/<feature>_embedding` (reference sizes)."""
    return {
        "query/user_embedding": vocab.num_users + 1,  # +1: id 0 does not exist
        "query/gender_embedding": vocab.num_genders,
        "query/age_embedding": vocab.num_age_bins,
        "query/gender_x_age_embedding": vocab.num_crosses,
        "query/occupation_embedding": vocab.num_occupations,
        "candidate/movie_embedding": vocab.num_movies + 1,  # +1: id 0 does not exist
        "candidate/title_embedding": vocab.num_title_tokens + 1,  # row 0 masked
        "candidate/genres_embedding": vocab.num_genres + 1,  # row 0 masked
    }


def tower_input_dims(embedding_dim: int) -> dict[str, int]:
    """Width of each tower's concatenated embeddings (5 query, 3 candidate features)."""
    return {"query": 5 * embedding_dim, "candidate": 3 * embedding_dim}


def weight_shapes(
    vocab: Vocabulary, layer_sizes: tuple[int, ...], embedding_dim: int
) -> dict[str, tuple[int, ...]]:
    """Every weight's name and shape in the neutral layout, in a stable order."""
    shapes: dict[str, tuple[int, ...]] = {
        name: (rows, embedding_dim) for name, rows in embedding_rows(vocab).items()
    }
    for tower, width in tower_input_dims(embedding_dim).items():
        fan_in = width
        for i, units in enumerate(layer_sizes):
            shapes[f"{tower}/dense_{i}/kernel"] = (fan_in, units)
            shapes[f"{tower}/dense_{i}/bias"] = (units,)
            fan_in = units
    return shapes


def init_weights(
    vocab: Vocabulary, layer_sizes: tuple[int, ...], embedding_dim: int, seed: int
) -> Weights:
    """Keras-default initial weights drawn in numpy from `seed`."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for name, shape in weight_shapes(vocab, layer_sizes, embedding_dim).items():
        if name.endswith("_embedding"):
            w = rng.uniform(-0.05, 0.05, size=shape)
        elif name.endswith("/kernel"):
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            w = rng.uniform(-limit, limit, size=shape)
        else:
            w = np.zeros(shape)
        weights[name] = w.astype(np.float32)
    return weights


def check_weights(
    weights: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]
) -> None:
    """Raise ValueError naming the first missing, extra or misshapen weight."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise ValueError(f"weight names differ: missing {missing}, unexpected {extra}")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != tuple(shape):
            raise ValueError(f"{name}: shape {weights[name].shape}, expected {shape}")


def save_weights(path: Path, weights: Mapping[str, np.ndarray]) -> None:
    arrays: dict[str, np.ndarray] = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


def load_weights(path: Path) -> Weights:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
