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

from bench.data.dataset import CANDIDATE_FEATURES, QUERY_FEATURES, Vocabulary

Weights = dict[str, np.ndarray]


# Embedding table (neutral weight name) of each input feature, in concatenation order.
QUERY_EMBEDDINGS: dict[str, str] = {
    "user_id": "query/user_embedding",
    "user_gender": "query/gender_embedding",
    "raw_user_age": "query/age_embedding",
    "user_gender_X_raw_user_age": "query/gender_x_age_embedding",
    "user_occupation_label": "query/occupation_embedding",
}
CANDIDATE_EMBEDDINGS: dict[str, str] = {
    "movie_id": "candidate/movie_embedding",
    "movie_title_vector": "candidate/title_embedding",  # masked mean over tokens
    "movie_genres": "candidate/genres_embedding",  # masked mean over genres
}
TOWER_EMBEDDINGS: dict[str, dict[str, str]] = {
    "query": QUERY_EMBEDDINGS,
    "candidate": CANDIDATE_EMBEDDINGS,
}
assert tuple(QUERY_EMBEDDINGS) == QUERY_FEATURES
assert tuple(CANDIDATE_EMBEDDINGS) == CANDIDATE_FEATURES


def dense_names(tower: str, layer: int) -> tuple[str, str]:
    """(kernel, bias) weight names of one dense layer of a tower ("query" or "candidate")."""
    return f"{tower}/dense_{layer}/kernel", f"{tower}/dense_{layer}/bias"


def embedding_rows(vocab: Vocabulary) -> dict[str, int]:
    """Rows of every embedding table, by weight name, query tables first (reference sizes)."""
    rows = {
        "user_id": vocab.num_users + 1,  # +1: id 0 does not exist
        "user_gender": vocab.num_genders,
        "raw_user_age": vocab.num_age_bins,
        "user_gender_X_raw_user_age": vocab.num_crosses,
        "user_occupation_label": vocab.num_occupations,
        "movie_id": vocab.num_movies + 1,  # +1: id 0 does not exist
        "movie_title_vector": vocab.num_title_tokens + 1,  # row 0 masked
        "movie_genres": vocab.num_genres + 1,  # row 0 masked
    }
    return {name: rows[f] for tables in TOWER_EMBEDDINGS.values() for f, name in tables.items()}


def tower_input_dims(embedding_dim: int) -> dict[str, int]:
    """Width of each tower's concatenated embeddings (one embedding per feature)."""
    return {tower: len(tables) * embedding_dim for tower, tables in TOWER_EMBEDDINGS.items()}


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
            kernel, bias = dense_names(tower, i)
            shapes[kernel] = (fan_in, units)
            shapes[bias] = (units,)
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
