"""Keras Adagrad as the TensorFlow backend applies it to embedding gradients: an emulation in JAX.

Why this exists: keras-tf's losses drift away from every other
implementation's (1e-7 at step 2, 3e-4 by step 10 of the parity run). On the
TF backend the gradient of an embedding lookup (tf.gather) is a
tf.IndexedSlices with one slice per *occurrence* of an id in the batch, not
per row. Keras's Adagrad.update_step does `assign_add(acc, square(g))`;
`square` maps over the slices (keras/src/backend/tensorflow/sparse.py,
elementwise_unary) and `assign_add` scatter-adds them
(keras/src/backend/tensorflow/optimizer.py). A row seen n times in a batch
thus gains sum_i g_i**2 instead of (sum_i g_i)**2: its accumulator grows more
slowly and its effective learning rate stays higher. The weight update itself
(linear in g) is unchanged. Rows that occur once (and every Dense variable)
behave as on jax and torch.

This module reproduces exactly that rule on top of the native JAX model, so
tests can show keras-tf matches *it* within the ordinary parity tolerances:
the divergence is this semantic difference and nothing else.
Runs only in a JAX child process (imports jax).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from bench.data.dataset import Split
from bench.weights import CANDIDATE_EMBEDDINGS, QUERY_EMBEDDINGS
from impls import _shared
from impls.jax_native import model

Params = dict[str, jax.Array]
_TABLES = {**QUERY_EMBEDDINGS, **CANDIDATE_EMBEDDINGS}  # feature -> table


def _loss_from_lookups(
    dense: Params, lookups: Mapping[str, jax.Array], batch: Mapping[str, jax.Array]
) -> jax.Array:
    """The model's loss with every embedding lookup given (so its gradient is per occurrence)."""
    def part(feature: str) -> jax.Array:
        x = lookups[feature]
        if feature in _shared.MASKED_FEATURES:
            mask = (batch[feature] != 0).astype(x.dtype)[..., None]
            return jnp.sum(x * mask, axis=1) / jnp.sum(mask, axis=1)
        return x

    query = jnp.concatenate([part(f) for f in QUERY_EMBEDDINGS], axis=1)
    cand = jnp.concatenate([part(f) for f in CANDIDATE_EMBEDDINGS], axis=1)
    scores = jnp.sum(
        model.dense_stack(dense, "query", query) * model.dense_stack(dense, "candidate", cand),
        axis=1,
    )
    return jnp.mean(jnp.square(batch["label"] - scores))


@jax.jit
def _step(
    params: Params, acc: Params, batch: Mapping[str, jax.Array], lr: jax.Array
) -> tuple[Params, Params, jax.Array]:
    dense = {k: v for k, v in params.items() if "/dense_" in k}
    lookups = {f: params[t][batch[f]] for f, t in _TABLES.items()}
    loss, (g_dense, g_occ) = jax.value_and_grad(_loss_from_lookups, argnums=(0, 1))(
        dense, lookups, batch
    )
    new_p, new_a = model.adagrad_update(dense, {k: acc[k] for k in dense}, g_dense, lr)
    for feature, table in _TABLES.items():
        ids = batch[feature]
        new_a[table] = acc[table].at[ids].add(jnp.square(g_occ[feature]))  # per occurrence
        grad = jnp.zeros_like(params[table]).at[ids].add(g_occ[feature])  # = the dense gradient
        new_p[table] = params[table] - lr * grad / jnp.sqrt(new_a[table] + _shared.ADAGRAD_EPSILON)
    return new_p, new_a, loss


def train_one_epoch(
    weights: Mapping[str, np.ndarray], train: Split, batch_size: int, learning_rate: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-step losses and final weights of one epoch under the IndexedSlices accumulator rule."""
    params = {k: jnp.asarray(v, jnp.float32) for k, v in weights.items()}
    acc = {k: jnp.full(v.shape, _shared.ADAGRAD_INITIAL_ACCUMULATOR, jnp.float32)
           for k, v in params.items()}
    lr = jnp.float32(learning_rate)
    losses = []
    for batch in _shared.host_batches(train, batch_size):
        params, acc, loss = _step(params, acc, {k: jnp.asarray(v) for k, v in batch.items()}, lr)
        losses.append(float(loss))
    return np.asarray(losses), {k: np.asarray(v) for k, v in params.items()}
