"""The deep retrieval model as pure JAX functions of a params dict in the neutral layout.

Params are keyed by the neutral weight names (bench.weights), so export and
import are plain dict copies. Every function here is pure and traced by jit.
The towers take the Keras model's padded rows (inference, and `jax-padded`'s
training) or packed batches (impls/_packed.py); `loss_fn` takes every
training layout there.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from bench.weights import CANDIDATE_EMBEDDINGS, QUERY_EMBEDDINGS, dense_names
from impls._shared import ADAGRAD_EPSILON, MASKED_FEATURES

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


def segment_mean(entries: jax.Array, segment: jax.Array, count: jax.Array) -> jax.Array:
    """(S, D) mean of each segment's entries (impls/_packed.py): sorted segment sum / count.

    S = len(count); entries of segment S, the spare one padding fills, are summed apart
    and dropped.
    """
    sums = jax.ops.segment_sum(
        entries, segment, num_segments=count.shape[0] + 1, indices_are_sorted=True
    )[:-1]
    return sums / count[:, None]  # sum(x * mask) / sum(mask)


def stacked_table(params: Mapping[str, jax.Array], tables: Mapping[str, str]) -> jax.Array:
    """The tower's embedding tables as one, in concatenation order (impls/_packed.py).

    Stacked inside the step, so params keep the neutral layout; the stacking
    costs about 2% of a depth-1 step and its gradient is a slice.
    """
    return jnp.concatenate([params[name] for name in tables.values()])


def dense_stack(params: Mapping[str, jax.Array], tower: str, x: jax.Array) -> jax.Array:
    """The tower's dense layers: ReLU on all but the last, which is linear."""
    depth = num_layers(params)
    for i in range(depth):
        kernel, bias = dense_names(tower, i)
        x = x @ params[kernel] + params[bias]  # kernel (in, out), as Keras stores it
        if i < depth - 1:
            x = jax.nn.relu(x)
    return x


def gathered_query_inputs(table: jax.Array, ids: jax.Array) -> jax.Array:
    """(R, 5*D) query tower input of a packed batch: rows `ids` (R, 5) of `table`, concatenated.

    `table` is the stacked query table and `ids` the batch's "query_ids", or
    (jax-sparse, impls/jax_native/sparse.py) the batch's distinct rows and
    each id's index among them: the same values.
    """
    return table[ids].reshape(ids.shape[0], -1)


def gathered_candidate_inputs(table: jax.Array, ids: jax.Array, batch: Batch) -> jax.Array:
    """(R, 3*D) candidate tower input of a packed batch: rows `ids` (E,) of `table`, as
    segment means (movie embedding, title and genre means), concatenated.

    `table`, `ids`: as for `gathered_query_inputs`, of the candidate tower.
    """
    means = segment_mean(table[ids], batch["segment"], batch["count"])  # (R * 3, D)
    return means.reshape(batch["count"].shape[0] // len(CANDIDATE_EMBEDDINGS), -1)


def query_inputs(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """(R, 5*D) query tower input: one gather if packed, else a lookup per feature."""
    if "query_ids" in batch:
        return gathered_query_inputs(stacked_table(params, QUERY_EMBEDDINGS), batch["query_ids"])
    parts = [params[name][batch[feature]] for feature, name in QUERY_EMBEDDINGS.items()]
    return jnp.concatenate(parts, axis=1)


def candidate_inputs(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """(R, 3*D) candidate tower input: id embedding, title and genre means, concatenated.

    Packed: one gather and one segment mean; rows: a lookup per feature, the
    masked means as Keras computes them.
    """
    if "candidate_ids" in batch:
        table = stacked_table(params, CANDIDATE_EMBEDDINGS)
        return gathered_candidate_inputs(table, batch["candidate_ids"], batch)
    parts = []
    for feature, name in CANDIDATE_EMBEDDINGS.items():
        if feature in MASKED_FEATURES:
            parts.append(masked_mean(params[name], batch[feature]))
        else:
            parts.append(params[name][batch[feature]])
    return jnp.concatenate(parts, axis=1)


def query_tower(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """(R, out) query embeddings: the five embeddings concatenated, then the dense stack."""
    return dense_stack(params, "query", query_inputs(params, batch))


def candidate_tower(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """(R, out) candidate embeddings: the tower's inputs, then the dense stack."""
    return dense_stack(params, "candidate", candidate_inputs(params, batch))


def mse(query: jax.Array, candidate: jax.Array, label: jax.Array) -> jax.Array:
    """MSE between each row's dot(query, candidate) and its label, averaged over the batch."""
    return jnp.mean(jnp.square(label - jnp.sum(query * candidate, axis=1)))


def loss_fn(params: Mapping[str, jax.Array], batch: Batch) -> jax.Array:
    """The training loss on a batch in any layout of impls/_packed.py.

    "distinct" batches ran each tower once per distinct row: each rating
    gathers its rows back, with the same value and gradients.
    """
    query, candidate = query_tower(params, batch), candidate_tower(params, batch)
    if "query_index" in batch:
        query, candidate = query[batch["query_index"]], candidate[batch["candidate_index"]]
    return mse(query, candidate, batch["label"])


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
    """One Adagrad step on one batch; the new state and the loss before the update."""
    value, grads = jax.value_and_grad(loss_fn)(params, batch)
    params, accumulators = adagrad_update(params, accumulators, grads, learning_rate)
    return params, accumulators, value


def scan_epoch(
    params: Params, accumulators: Params, stacked: Batch, learning_rate: float
) -> tuple[Params, Params, jax.Array]:
    """train_step over every batch of `stacked` (leading axis = step) in one lax.scan."""

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
