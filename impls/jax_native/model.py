"""The deep retrieval model as pure JAX functions of a params dict in the neutral layout.

Params are keyed by the neutral weight names (bench.weights), so export and
import are plain dict copies. Every function here is pure and traced by jit.
Training batches come in three layouts, each with its loss: packed
(impls/_packed.py, the native implementation), padded (the Keras model's
layout) and deduplicated (impls/_batches.py). Inference takes padded inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from impls._shared import (
    ADAGRAD_EPSILON,
    CANDIDATE_EMBEDDINGS,
    MASKED_FEATURES,
    QUERY_EMBEDDINGS,
    dense_names,
)

Params = dict[str, jax.Array]
Batch = Mapping[str, jax.Array]


def num_layers(params: Mapping[str, jax.Array]) -> int:
    """Depth of the dense stack, read from the (static) parameter names."""
    return sum(1 for k in params if k.startswith("query/dense_") and k.endswith("/kernel"))


def masked_mean(table: jax.Array, ids: jax.Array) -> jax.Array:
    """(B, D) mean of the embeddings of the non-zero ids of each row (Keras mask semantics).

    As keras.layers.GlobalAveragePooling1D with a mask: sum(x * mask) / sum(mask).
    """
    mask = (ids != 0).astype(table.dtype)[..., None]  # (B, L, 1)
    return jnp.sum(table[ids] * mask, axis=1) / jnp.sum(mask, axis=1)  # (B, D)


def bag_mean(table: jax.Array, bag: Mapping[str, jax.Array]) -> jax.Array:
    """masked_mean from a compact bag (impls/_batches.py): ids, segment, weight, count."""
    embedded = table[bag["ids"]] * bag["weight"][:, None]  # (N, D); padding entries weigh 0
    rows = bag["count"].shape[0]
    summed = jax.ops.segment_sum(
        embedded, bag["segment"], num_segments=rows, indices_are_sorted=True
    )
    return summed / bag["count"][:, None]  # (U, D)


def dense_stack(params: Mapping[str, jax.Array], tower: str, x: jax.Array) -> jax.Array:
    """The tower's dense layers: ReLU on all but the last, which is linear."""
    depth = num_layers(params)
    for i in range(depth):
        kernel, bias = dense_names(tower, i)
        x = x @ params[kernel] + params[bias]  # kernel (in, out), as Keras stores it
        if i < depth - 1:
            x = jax.nn.relu(x)
    return x


def query_tower(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """(B, out) query embeddings: five embeddings concatenated, then the dense stack."""
    parts = [params[name][batch[feature]] for feature, name in QUERY_EMBEDDINGS.items()]
    return dense_stack(params, "query", jnp.concatenate(parts, axis=1))


def candidate_tower(params: Mapping[str, jax.Array], batch: Mapping[str, Any]) -> jax.Array:
    """(B, out) candidate embeddings: id embedding, masked-mean title and genres, dense stack."""
    parts = []
    for feature, name in CANDIDATE_EMBEDDINGS.items():
        value = batch[feature]
        if isinstance(value, Mapping):  # a compact bag (training batches)
            parts.append(bag_mean(params[name], value))
        elif feature in MASKED_FEATURES:
            parts.append(masked_mean(params[name], value))
        else:
            parts.append(params[name][batch[feature]])
    return dense_stack(params, "candidate", jnp.concatenate(parts, axis=1))


def mse(query: jax.Array, candidate: jax.Array, label: jax.Array) -> jax.Array:
    """MSE between each row's dot(query, candidate) and its label, averaged over the batch."""
    return jnp.mean(jnp.square(label - jnp.sum(query * candidate, axis=1)))


def loss_fn(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """The loss on a padded row-wise batch, one lookup per feature (the Keras model's layout)."""
    return mse(query_tower(params, batch), candidate_tower(params, batch), batch["label"])


def stacked_table(params: Mapping[str, jax.Array], tables: Mapping[str, str]) -> jax.Array:
    """The tower's embedding tables as one, in concatenation order (impls/_packed.py)."""
    return jnp.concatenate([params[name] for name in tables.values()])


def packed_loss_fn(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """loss_fn on a table-batched batch (impls/_packed.py): one gather per tower.

    The tables are stacked inside the step, so params keep the neutral layout;
    the stacking costs about 2% of a depth-1 step and its gradient is a slice.
    """
    rows = batch["label"].shape[0]
    blocks = len(CANDIDATE_EMBEDDINGS)
    query_in = stacked_table(params, QUERY_EMBEDDINGS)[batch["query_ids"]].reshape(rows, -1)
    entries = stacked_table(params, CANDIDATE_EMBEDDINGS)[batch["candidate_ids"]]  # (E, D)
    sums = jax.ops.segment_sum(  # one spare segment takes the padding entries
        entries, batch["segment"], num_segments=rows * blocks + 1, indices_are_sorted=True
    )[:-1]
    cand_in = (sums / batch["count"][:, None]).reshape(rows, -1)  # sum(x * mask) / sum(mask)
    query = dense_stack(params, "query", query_in)
    return mse(query, dense_stack(params, "candidate", cand_in), batch["label"])


def dedup_loss_fn(params: Mapping[str, jax.Array], batch: Mapping[str, Any]) -> jax.Array:
    """loss_fn on a batch whose towers' distinct rows are apart (impls/_batches.py).

    Each tower runs once per distinct input row; the rating's embeddings are
    gathered back by index. Same value and gradients as loss_fn.
    """
    query = query_tower(params, batch["query"])[batch["query_index"]]  # (B, out)
    cand = candidate_tower(params, batch["candidate"])[batch["candidate_index"]]  # (B, out)
    return mse(query, cand, batch["label"])


def adagrad_update(
    params: Params, accumulators: Params, grads: Params, learning_rate: float
) -> tuple[Params, Params]:
    """Keras Adagrad: acc += g^2; p -= lr * g / sqrt(acc + eps)."""
    new_acc = {k: accumulators[k] + jnp.square(g) for k, g in grads.items()}
    new_params = {
        k: params[k] - learning_rate * g / jnp.sqrt(new_acc[k] + ADAGRAD_EPSILON)
        for k, g in grads.items()
    }
    return new_params, new_acc


def train_step(
    params: Params, accumulators: Params, batch: Batch, learning_rate: float
) -> tuple[Params, Params, jax.Array]:
    """One Adagrad step on one packed batch; the new state and the loss before the update."""
    return _step(packed_loss_fn, params, accumulators, batch, learning_rate)


def padded_train_step(
    params: Params, accumulators: Params, batch: Batch, learning_rate: float
) -> tuple[Params, Params, jax.Array]:
    """train_step on a padded row-wise batch, through loss_fn (the Keras model's layout)."""
    return _step(loss_fn, params, accumulators, batch, learning_rate)


def dedup_train_step(
    params: Params, accumulators: Params, batch: Batch, learning_rate: float
) -> tuple[Params, Params, jax.Array]:
    """train_step on a deduplicated batch (impls/_batches.py), through dedup_loss_fn."""
    return _step(dedup_loss_fn, params, accumulators, batch, learning_rate)


def _step(
    loss: Any, params: Params, accumulators: Params, batch: Batch, learning_rate: float
) -> tuple[Params, Params, jax.Array]:
    """value_and_grad of `loss`, then the Adagrad update."""
    value, grads = jax.value_and_grad(loss)(params, batch)
    params, accumulators = adagrad_update(params, accumulators, grads, learning_rate)
    return params, accumulators, value


def scan_epoch(
    params: Params, accumulators: Params, stacked: Batch, learning_rate: float
) -> tuple[Params, Params, jax.Array]:
    """train_step over every packed batch of `stacked` (leading axis = step) in one lax.scan."""

    def body(state: tuple[Params, Params], batch: Batch) -> tuple[tuple[Params, Params], jax.Array]:
        p, a, loss = train_step(state[0], state[1], batch, learning_rate)
        return (p, a), loss

    (params, accumulators), losses = jax.lax.scan(body, (params, accumulators), stacked)
    return params, accumulators, losses


def top_k_rows(queries: jax.Array, candidates: jax.Array, k: int) -> jax.Array:
    """(B, k) candidate rows by descending dot product (jax.lax.top_k)."""
    return jax.lax.top_k(queries @ candidates.T, k)[1]


def batch_hits(
    params: Params, candidates: jax.Array, candidate_ids: jax.Array, batch: Batch, k: int
) -> tuple[jax.Array, jax.Array]:
    """(weighted hits, weight total) of one test batch: 5-star rows whose movie is in the top k."""
    rows = top_k_rows(query_tower(params, batch), candidates, k)  # (B, k)
    hit = jnp.any(candidate_ids[rows] == batch["movie_id"][:, None], axis=1)
    weight = (batch["label"] > 0.9).astype(jnp.float32)  # the reference's greater(y, 0.9)
    return jnp.sum(hit * weight), jnp.sum(weight)
