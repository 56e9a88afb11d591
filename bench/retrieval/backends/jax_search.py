"""Native JAX: jit-compiled matmul + lax.top_k, its blocked variant, and lax.approx_max_k."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from bench.retrieval.backends.base import Searcher


@functools.partial(jax.jit, static_argnames=("k",))
def _exact(queries: jax.Array, candidates: jax.Array, k: int) -> jax.Array:
    return jax.lax.top_k(queries @ candidates.T, k)[1]  # (B, N) scores -> (B, k)


@functools.partial(jax.jit, static_argnames=("k", "recall_target"))
def _approx(queries: jax.Array, candidates: jax.Array, k: int, recall_target: float) -> jax.Array:
    scores = queries @ candidates.T  # (B, N)
    return jax.lax.approx_max_k(scores, k, recall_target=recall_target)[1]


@functools.partial(jax.jit, static_argnames=("k",))
def _blocked(queries: jax.Array, blocks: jax.Array, bias: jax.Array, k: int) -> jax.Array:
    """Top k over (nb, block, dim) candidate blocks; padded rows carry bias -inf.

    lax.map runs the blocks one after another, so only a (B, block) score tile
    is live at a time; the (nb, B, k) per-block winners are merged at the end.
    """
    nb, block, _ = blocks.shape
    kb = min(k, block)  # a block cannot give more winners than it has rows

    def one(args: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        cand, b = args
        return jax.lax.top_k(queries @ cand.T + b, kb)  # (B, block) -> (B, kb) x2

    values, rows = jax.lax.map(one, (blocks, bias))  # (nb, B, kb) each
    rows = rows + (jnp.arange(nb, dtype=rows.dtype) * block)[:, None, None]
    values = values.transpose(1, 0, 2).reshape(queries.shape[0], nb * kb)  # block-major
    rows = rows.transpose(1, 0, 2).reshape(queries.shape[0], nb * kb)
    best = jax.lax.top_k(values, k)[1]  # equal values: lower position = lower row
    return jnp.take_along_axis(rows, best, axis=1)


class JaxSearcher(Searcher):
    """Native JAX top-k on the default device.

    Args:
        block: candidates per block (streaming variant); None scores all at once.
        approx: use jax.lax.approx_max_k (params: recall_target) instead of top_k.
    """

    framework: ClassVar[str] = "jax"
    sync_mechanism: ClassVar[str] = "jax.block_until_ready + np.asarray"

    def __init__(self, block: int | None = None, approx: bool = False) -> None:
        self.block, self.approx = block, approx
        self.recall_target = 0.95
        self.candidates: Any = None
        self.blocks: Any = None
        self.bias: Any = None

    def build(self, candidates: np.ndarray) -> None:
        n, dim = candidates.shape
        if self.block is None or self.block >= n:
            self.block = None
            self.candidates = jax.block_until_ready(jax.device_put(candidates))
            return
        nb = -(-n // self.block)
        padded = np.zeros((nb * self.block, dim), dtype=np.float32)
        padded[:n] = candidates
        bias = np.zeros(nb * self.block, dtype=np.float32)
        bias[n:] = -np.inf  # padding rows never win
        self.blocks = jax.device_put(padded.reshape(nb, self.block, dim))
        self.bias = jax.device_put(bias.reshape(nb, 1, self.block))
        jax.block_until_ready((self.blocks, self.bias))

    def set_params(self, params: dict[str, Any]) -> None:
        if not self.approx:
            super().set_params(params)
        self.recall_target = float(params.get("recall_target", self.recall_target))

    def to_device(self, queries: np.ndarray) -> Any:
        return jax.block_until_ready(jax.device_put(queries))

    def search(self, queries: Any, k: int) -> Any:
        if self.approx:
            return _approx(queries, self.candidates, k, self.recall_target)
        if self.block is None:
            return _exact(queries, self.candidates, k)
        return _blocked(queries, self.blocks, self.bias, k)

    def to_numpy(self, result: Any) -> np.ndarray:
        return np.asarray(jax.block_until_ready(result))

    def phases(self, queries: Any, k: int) -> dict[str, Callable[[], Any]]:
        if self.candidates is None:
            return {}  # blocked: matmul and top_k interleave inside one program
        matmul = jax.jit(lambda q, c: q @ c.T)
        top_k = jax.jit(lambda s: jax.lax.top_k(s, k)[1])
        scores = jax.block_until_ready(matmul(queries, self.candidates))
        ids = jax.block_until_ready(top_k(scores))
        copy = jax.jit(jnp.copy)
        # A jax.Array caches its host copy, so "transfer" converts a fresh device copy
        # each call: an upper bound (it includes that on-device copy).
        return {"matmul": lambda: jax.block_until_ready(matmul(queries, self.candidates)),
                "top_k": lambda: jax.block_until_ready(top_k(scores)),
                "transfer": lambda: np.asarray(copy(ids))}

    def versions(self) -> dict[str, str]:
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def device_name(self) -> str:
        return str(jax.devices()[0])

    def resolved_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"block": self.block, "jit": True}
        if self.approx:
            opts["recall_target"] = self.recall_target
        return opts
