"""keras_rs.layers.BruteForceRetrieval on whichever backend KERAS_BACKEND selects.

One backend-agnostic searcher; the backend quirk (how to compile a call) is
fenced in `_compiled`, the single dispatcher on `keras.backend.backend()`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar

import keras
import keras_rs
import numpy as np

from bench.retrieval.backends.base import Searcher

# mode -> backends it applies to; "eager" applies to all.
MODES: dict[str, tuple[str, ...]] = {
    "eager": ("jax", "tensorflow", "torch"),
    "jit": ("jax",),  # stateless_call under jax.jit
    "graph": ("tensorflow",),  # tf.function(jit_compile=False)
    "xla": ("tensorflow",),  # tf.function(jit_compile=True)
    "compile": ("torch",),  # torch.compile
}
SYNC = {
    "jax": "np.asarray (waits for the jax array)",
    "tensorflow": "Tensor.numpy()",
    "torch": "torch.cuda.synchronize (GPU) + .cpu().numpy()",
}


def _compiled(layer: Any, mode: str) -> Callable[[Any], Any]:
    """`layer`'s call, compiled as `mode` asks on the current backend."""
    backend = keras.backend.backend()
    if mode == "eager":
        return layer
    if backend == "jax" and mode == "jit":
        import jax

        # Variables go in as arguments: a closure would bake 1M x dim into the program.
        fn = jax.jit(lambda ntv, q: layer.stateless_call([], ntv, q)[0])
        return lambda q: fn([v.value for v in layer.non_trainable_variables], q)
    if backend == "tensorflow" and mode in ("graph", "xla"):
        import tensorflow as tf

        return tf.function(layer.call, jit_compile=mode == "xla")
    if backend == "torch" and mode == "compile":
        import torch

        return torch.compile(layer.call)
    raise ValueError(f"mode {mode!r} does not apply to the {backend} backend")


class KerasRsSearcher(Searcher):
    """BruteForceRetrieval(return_scores=False): ids of the top k, scores by dot product.

    Args:
        mode: "eager", or the backend's compiled mode ("jit", "graph", "xla", "compile").
    """

    framework: ClassVar[str] = "keras"
    sync_mechanism: ClassVar[str] = "keras.ops.convert_to_numpy"

    def __init__(self, mode: str = "eager") -> None:
        backend = keras.backend.backend()
        if backend not in MODES.get(mode, ()):
            raise ValueError(f"mode {mode!r} does not apply to the {backend} backend")
        self.mode = mode
        self.layer: Any = None
        self.calls: dict[int, Callable[[Any], Any]] = {}

    def build(self, candidates: np.ndarray) -> None:
        self.layer = keras_rs.layers.BruteForceRetrieval(k=1, return_scores=False)
        self.layer.update_candidates(keras.ops.convert_to_tensor(candidates))
        keras.ops.convert_to_numpy(self.layer.candidate_embeddings.value[:1])  # wait for upload

    def to_device(self, queries: np.ndarray) -> Any:
        return keras.ops.convert_to_tensor(queries)

    def search(self, queries: Any, k: int) -> Any:
        if k not in self.calls:
            # The layer reads `k` when called (traced); one compiled call per k.
            self.layer.k = k
            self.calls[k] = _compiled(self.layer, self.mode)
        self.layer.k = k
        return self._no_grad(self.calls[k], queries)

    def _no_grad(self, fn: Callable[[Any], Any], queries: Any) -> Any:
        if keras.backend.backend() == "torch":
            import torch

            with torch.inference_mode():
                return fn(queries)
        return fn(queries)

    def to_numpy(self, result: Any) -> np.ndarray:
        return keras.ops.convert_to_numpy(result)

    def phases(self, queries: Any, k: int) -> dict[str, Callable[[], Any]]:
        """The layer's ops, eager, each synchronised by a one-element host copy.

        The layer's compute_score is a transpose of the candidates, then a
        matmul: timed apart here ("matmul" on candidates transposed beforehand),
        so the phases add up without counting the transpose twice.
        """
        ops = keras.ops
        cand = self.layer.candidate_embeddings.value
        cand_t = ops.transpose(cand)

        def sync(x: Any) -> Any:
            ops.convert_to_numpy(x[:1, :1])  # waits for x without copying it all
            return x

        scores = ops.matmul(queries, cand_t)
        ids = ops.top_k(scores, k)[1]
        return {"transpose": lambda: sync(ops.transpose(cand)),  # eager: a copy per call
                "matmul": lambda: self._no_grad(lambda q: sync(ops.matmul(q, cand_t)), queries),
                "top_k": lambda: self._no_grad(lambda q: sync(ops.top_k(scores, k)[1]), queries),
                "transfer": lambda: ops.convert_to_numpy(ids)}

    def versions(self) -> dict[str, str]:
        backend = keras.backend.backend()
        module = sys.modules[backend]  # imported by keras itself for its backend
        return {"keras": keras.__version__, "keras_rs": keras_rs.__version__,
                backend: module.__version__}

    def resolved_options(self) -> dict[str, Any]:
        return {"backend": keras.backend.backend(), "mode": self.mode}
