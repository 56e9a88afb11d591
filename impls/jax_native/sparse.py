"""Native JAX with sparse embedding updates (`jax-sparse`): a step touches only the batch's rows.

`jax` differentiates with respect to whole embedding tables, so its Adagrad
update reads and writes every row of every table on every step: with a
million-row table that is the whole table's memory traffic per step. Here
the step, still one jitted function with static shapes, works on the rows
the batch touches:

1. per tower, the distinct rows of the batch's stacked ids (`unique`: as
   `jnp.unique` with `size=` the number of ids, the maximum possible, the rest
   filled with an id past the stacked table, which no table holds);
2. those rows gathered into one block per tower, table after table: sorted,
   a table's ids are one run, which gets as many places in the block as the
   table can have distinct ids in a batch (`most_ids`), so the block does not
   grow with the tables (`mode="fill"`: a place past the run reads zeros);
3. the loss differentiated with respect to the blocks and the dense layers:
   the batch reads each id's row at its place in the block, so the gradient
   of a row seen n times is the sum of its n contributions, as the dense
   gradient of the table is;
4. Adagrad (the same `model.adagrad_update`) on the blocks and their
   accumulators, gathered alike, and on the dense layers as in `jax`;
5. the blocks written back into each table with `.at[].set(mode="drop")`
   (places past a table's run point past the table and are dropped).
   params and accumulators are donated, so XLA updates the tables in place.

Adagrad leaves a row with zero gradient exactly unchanged (acc + 0, p - 0),
so updating only the touched rows is `jax`'s arithmetic; the batches are
`jax`'s "packed" batches (impls/_packed.py), and the parity tests
(tests/impls/test_sparse.py) compare the two step by step. The params keep
the neutral layout, so everything but the training step is `JaxRetrieval`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bench.weights import TOWER_EMBEDDINGS
from impls._shared import MASKED_FEATURES
from impls.jax_native import impl, model
from impls.jax_native.model import Batch, Params


class Touched(NamedTuple):
    """The distinct rows one tower's ids touch: a block of rows, table after table."""

    rows: tuple[jax.Array, ...]  # per table: its part of the block, rows of it (else past its end)
    inverse: jax.Array  # each id's row in the block (the ids' shape)


def unique(ids: jax.Array, fill: int) -> tuple[jax.Array, jax.Array]:
    """`jnp.unique(ids, size=len(ids), fill_value=fill, return_inverse=True)`, its outputs.

    `fill` must exceed every id. XLA:CPU sorts one integer operand about 7x
    faster than it sorts with a payload, which jnp.unique's inverse needs
    (0.19 vs 0.77 ms for 5,000 ids here): so one plain sort, the distinct ids
    compacted to the front, and each id's index among them by binary search.
    """
    n = ids.shape[0]
    ordered = jnp.sort(ids)
    first = jnp.concatenate([jnp.ones(1, bool), ordered[1:] != ordered[:-1]])
    place = jnp.where(first, jnp.cumsum(first, dtype=jnp.int32) - 1, n)  # n: dropped
    distinct = jnp.full(n, fill, ids.dtype).at[place].set(ordered, mode="drop")
    return distinct, jnp.searchsorted(distinct, ids).astype(jnp.int32)


def most_ids(tables: Mapping[str, str], batch: Batch) -> list[int]:
    """How many distinct ids each of a tower's tables can have in a packed batch (static).

    A feature that is not masked has one id per rating; padding entries add
    id 0, which is row 0 of the tower's first table (impls/_packed.py), hence
    the + 1. A masked one (titles, genres) has at most all the entries.
    """
    ratings, entries = batch["label"].shape[0], batch["candidate_ids"].shape[0]
    return [entries if f in MASKED_FEATURES else ratings + 1 for f in tables]


def touched(params: Mapping[str, jax.Array], tables: Mapping[str, str], ids: jax.Array,
            most: Sequence[int]) -> Touched:
    """Where the distinct stacked `ids` of a tower (impls/_packed.py) lie, with static shapes.

    Sorted, a table's distinct ids are one run; table t gets as many places in
    the block as it can have distinct ids: its rows, or `most[t]` if fewer.
    """
    sizes = [params[name].shape[0] for name in tables.values()]
    starts = [0, *accumulate(sizes)]
    flat = ids.reshape(-1)
    n, places = flat.shape[0], [min(m, size) for m, size in zip(most, sizes, strict=True)]
    distinct, inverse = unique(flat, fill=starts[-1])
    first = jnp.searchsorted(distinct, jnp.array(starts, distinct.dtype))  # where each run begins
    padded = jnp.concatenate([distinct, jnp.full(max(places), starts[-1], distinct.dtype)])
    rows = []
    for t, size in enumerate(sizes):
        run = jax.lax.dynamic_slice(padded, (first[t],), (places[t],)) - starts[t]
        rows.append(jnp.where(run < size, run, size))  # past the run: the next tables, the fill
    # Each distinct id's place: its table's part of the block, plus its rank within the run.
    table = jnp.searchsorted(jnp.array(starts[1:], distinct.dtype), distinct, side="right")
    base = jnp.array([0, *accumulate(places)], distinct.dtype)
    place = base[table] + jnp.arange(n, dtype=distinct.dtype) - first[table]
    return Touched(tuple(rows), place[inverse].reshape(ids.shape))


def gather(params: Mapping[str, jax.Array], tables: Mapping[str, str], where: Touched) -> jax.Array:
    """The block of touched rows of a tower's tables (zeros past each table's run)."""
    return jnp.concatenate([params[name].at[rows].get(mode="fill", fill_value=0)
                            for name, rows in zip(tables.values(), where.rows, strict=True)])


def scatter(params: Params, tables: Mapping[str, str], where: Touched, block: jax.Array) -> None:
    """Write the block's rows back into the tables (in `params`, in place when donated)."""
    start = 0
    for name, rows in zip(tables.values(), where.rows, strict=True):
        part = block[start : start + rows.shape[0]]
        params[name] = params[name].at[rows].set(part, mode="drop")
        start += rows.shape[0]


def rows_loss(dense: Params, blocks: Mapping[str, jax.Array], where: Mapping[str, Touched],
              batch: Batch) -> jax.Array:
    """`model.loss_fn` on a packed batch, reading the embeddings from the touched rows."""
    query_in = model.gathered_query_inputs(blocks["query"], where["query"].inverse)
    candidate_in = model.gathered_candidate_inputs(
        blocks["candidate"], where["candidate"].inverse, batch
    )
    query = model.dense_stack(dense, "query", query_in)
    candidate = model.dense_stack(dense, "candidate", candidate_in)
    return model.mse(query, candidate, batch["label"])


def sparse_train_step(
    params: Params, accumulators: Params, batch: Batch, learning_rate: float
) -> tuple[Params, Params, jax.Array]:
    """`model.train_step` on a packed batch, the embedding update on the touched rows only."""
    ids = {"query": batch["query_ids"], "candidate": batch["candidate_ids"]}
    where = {t: touched(params, tables, ids[t], most_ids(tables, batch))
             for t, tables in TOWER_EMBEDDINGS.items()}
    blocks = {t: gather(params, tables, where[t]) for t, tables in TOWER_EMBEDDINGS.items()}
    embedded = {name for tables in TOWER_EMBEDDINGS.values() for name in tables.values()}
    dense = {k: v for k, v in params.items() if k not in embedded}
    value, (dense_grads, block_grads) = jax.value_and_grad(rows_loss, argnums=(0, 1))(
        dense, blocks, where, batch
    )
    dense_acc = {k: accumulators[k] for k in dense}
    dense, dense_acc = model.adagrad_update(dense, dense_acc, dense_grads, learning_rate)
    new_params, new_acc = {**params, **dense}, {**accumulators, **dense_acc}
    for t, tables in TOWER_EMBEDDINGS.items():
        acc_block = gather(accumulators, tables, where[t])
        updated, updated_acc = model.adagrad_update(
            {t: blocks[t]}, {t: acc_block}, {t: block_grads[t]}, learning_rate
        )
        scatter(new_params, tables, where[t], updated[t])
        scatter(new_acc, tables, where[t], updated_acc[t])
    return new_params, new_acc, value


# donate_argnums: params and accumulators are consumed, so the scatters update them in place.
_sparse_step = jax.jit(sparse_train_step, donate_argnums=(0, 1))


class JaxSparseRetrieval(impl.JaxRetrieval):
    """Native JAX, jitted step updating only the embedding rows each batch touches.

    Otherwise `JaxRetrieval`: same packed batches, towers, loss and Adagrad.
    """

    train_step = staticmethod(_sparse_step)
