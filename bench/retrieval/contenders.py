"""Contenders of the retrieval study: name -> where its searcher lives, without importing it.

A contender is one way to answer "top-k candidates by dot product": a
searcher class in bench/retrieval/backends/ plus the options and environment
its worker needs. Discovery is data-driven (ann-benchmarks style): the parent
only reads this table; the worker imports the one module it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.errors import UsageError
from bench.registry import RequiresModules, lookup


@dataclass(frozen=True)
class Contender(RequiresModules):
    """One retrieval contender.

    Args:
        name: what `--impl` and the records call it.
        target: "module:Class" of its searcher (bench.retrieval.backends.base.Searcher).
        framework: "numpy" | "faiss" | "jax" | "tensorflow" | "torch".
        requires: importable top-level modules the worker needs.
        exact: whether it must find the exact top-k (recall 1.0).
        options: keyword arguments of the searcher's constructor (jit, block size, ...).
        params: search-time settings swept on one built index (nprobe, efSearch);
            each gives its own record, the points of a recall-vs-QPS curve.
        env: worker environment, e.g. KERAS_BACKEND.
        description: one line for tables and `--help`.
    """

    name: str
    target: str
    framework: str
    requires: tuple[str, ...]
    exact: bool
    options: Mapping[str, Any] = field(default_factory=dict)
    params: tuple[Mapping[str, Any], ...] = ({},)
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


_B = "bench.retrieval.backends"
BLOCK = 65536  # candidates per tile of the blocked variants: 1000 x 65536 f32 = 262 MB


def _keras(backend: str, mode: str, description: str) -> Contender:
    """keras_rs.layers.BruteForceRetrieval on one Keras backend, called in `mode`."""
    short = {"tensorflow": "tf"}.get(backend, backend)
    return Contender(
        name=f"keras-{short}" + ("" if mode == "eager" else f"-{mode}"),
        target=f"{_B}.keras_rs_search:KerasRsSearcher",
        framework=backend,
        requires=("keras", "keras_rs", backend),
        exact=True,
        options={"mode": mode},
        env={"KERAS_BACKEND": backend},
        description=f"keras_rs BruteForceRetrieval, {backend} backend, {description}",
    )


_ALL: tuple[Contender, ...] = (
    Contender("numpy", f"{_B}.numpy_search:NumpySearcher", "numpy", (), True,
              description="numpy matmul, argpartition then sort (the plain baseline)"),
    Contender("numpy-blocked", f"{_B}.numpy_search:NumpySearcher", "numpy", (), True,
              options={"block": BLOCK},
              description=f"numpy, {BLOCK}-candidate tiles, only scores above the running "
                          "k-th best merged; queries split over CPU-count threads"),
    Contender("faiss-flat", f"{_B}.faiss_search:FaissFlatSearcher", "faiss", ("faiss",), True,
              description="faiss IndexFlatIP (exact reference)"),
    Contender("faiss-ivf", f"{_B}.faiss_search:FaissIvfSearcher", "faiss", ("faiss",), False,
              params=tuple({"nprobe": p} for p in (1, 8, 64, 512)),
              description="faiss IndexIVFFlat, nlist ~ 4 sqrt(N), nprobe swept"),
    Contender("faiss-hnsw", f"{_B}.faiss_search:FaissHnswSearcher", "faiss", ("faiss",), False,
              params=tuple({"efSearch": e} for e in (128, 512, 2048)),
              description="faiss IndexHNSWFlat M=16 on the MIPS-to-L2 reduction, "
                          "efSearch swept (max(efSearch, k) used)"),
    Contender("jax", f"{_B}.jax_search:JaxSearcher", "jax", ("jax",), True,
              description="jax.jit(matmul + jax.lax.top_k)"),
    Contender("jax-blocked", f"{_B}.jax_search:JaxSearcher", "jax", ("jax",), True,
              options={"block": BLOCK},
              description=f"jax.jit, lax.map over {BLOCK}-candidate tiles, per-tile top_k merged"),
    Contender("jax-approx", f"{_B}.jax_search:JaxSearcher", "jax", ("jax",), False,
              options={"approx": True},
              params=({"recall_target": 0.95},),
              description="jax.jit(matmul + jax.lax.approx_max_k)"),
    Contender("torch", f"{_B}.torch_search:TorchSearcher", "torch", ("torch",), True,
              description="torch matmul + torch.topk (eager, inference_mode)"),
    Contender("torch-blocked", f"{_B}.torch_search:TorchSearcher", "torch", ("torch",), True,
              options={"block": BLOCK},
              description=f"torch, {BLOCK}-candidate blocks, per-block topk merged"),
    _keras("jax", "eager", "eager (op by op)"),
    _keras("jax", "jit", "stateless_call under jax.jit"),
    _keras("tensorflow", "eager", "eager"),
    _keras("tensorflow", "graph", "tf.function(jit_compile=False)"),
    _keras("tensorflow", "xla", "tf.function(jit_compile=True)"),
    _keras("torch", "eager", "eager (inference_mode)"),
    _keras("torch", "compile", "torch.compile (inductor)"),
)

CONTENDERS: dict[str, Contender] = {c.name: c for c in _ALL}


def get(name: str) -> Contender:
    """The contender called `name`, or a UsageError naming the nearest known one."""
    return lookup(CONTENDERS, name, "retrieval contender", cutoff=0.4)


def select(spec: str | None) -> list[Contender]:
    """Contenders for `--impl`: a comma list, or every installed one when None/"all".

    An explicitly named contender whose framework is missing is a UsageError.
    """
    if spec is None or spec.strip() in ("", "all"):
        return [c for c in _ALL if c.installed()]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    chosen = [get(n) for n in dict.fromkeys(names)]
    for c in chosen:
        if not c.installed():
            raise UsageError(f"{c.name} needs {', '.join(c.missing())}, not installed here")
    return chosen
