"""faiss-cpu: exact IndexFlatIP (the reference), IVF and HNSW approximate indexes."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import faiss
import numpy as np

from bench.retrieval.backends.base import Searcher

IVF_TRAIN_PER_LIST = 40  # faiss warns below ~39 training points per list
HNSW_M = 16  # graph degree: 32 builds ~2x slower (2 min at 1M x 32 on 2 cores)
HNSW_EF_CONSTRUCTION = 40  # faiss's default


class FaissFlatSearcher(Searcher):
    """faiss IndexFlatIP: exact inner-product search (blocked BLAS + heaps inside faiss)."""

    framework: ClassVar[str] = "faiss"
    sync_mechanism: ClassVar[str] = "none (faiss search is synchronous)"

    def __init__(self) -> None:
        self.index: Any = None
        self.params: dict[str, Any] = {}

    def _new_index(self, candidates: np.ndarray) -> Any:
        return faiss.IndexFlatIP(candidates.shape[1])

    def build(self, candidates: np.ndarray) -> None:
        candidates = np.ascontiguousarray(candidates, dtype=np.float32)
        self.index = self._new_index(candidates)
        if not self.index.is_trained:
            self.index.train(self._training_sample(candidates))
        self.index.add(candidates)

    def _training_sample(self, candidates: np.ndarray) -> np.ndarray:
        return candidates

    def search(self, queries: Any, k: int) -> np.ndarray:
        return self.index.search(queries, k)[1]

    def versions(self) -> dict[str, str]:
        return {"faiss": faiss.__version__}

    def resolved_options(self) -> dict[str, Any]:
        return {"index": type(self.index).__name__, "omp_threads": faiss.omp_get_max_threads()}


class FaissIvfSearcher(FaissFlatSearcher):
    """faiss IndexIVFFlat (inner product): k-means lists, `nprobe` of them scanned."""

    def _new_index(self, candidates: np.ndarray) -> Any:
        n, dim = candidates.shape
        self.nlist = int(min(max(16, 4 * math.sqrt(n)), n // IVF_TRAIN_PER_LIST or 1))
        quantizer = faiss.IndexFlatIP(dim)
        self.quantizer = quantizer  # faiss does not own it: keep it alive
        return faiss.IndexIVFFlat(quantizer, dim, self.nlist, faiss.METRIC_INNER_PRODUCT)

    def _training_sample(self, candidates: np.ndarray) -> np.ndarray:
        size = min(len(candidates), IVF_TRAIN_PER_LIST * self.nlist)
        rows = np.random.default_rng(0).choice(len(candidates), size=size, replace=False)
        return candidates[np.sort(rows)]

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = dict(params)
        self.index.nprobe = min(int(params.get("nprobe", 1)), self.nlist)

    def resolved_options(self) -> dict[str, Any]:
        return {**super().resolved_options(), "nlist": self.nlist, "nprobe": self.index.nprobe}


class FaissHnswSearcher(FaissFlatSearcher):
    """faiss IndexHNSWFlat, M=16, on the MIPS-to-L2 reduction; efSearch is raised to k.

    HNSW built on raw inner products links everything to a few long vectors and
    leaves the rest unreachable (recall ~0.5 on this data even with efSearch > N).
    So candidates get one extra coordinate sqrt(max_norm^2 - |x|^2), making every
    norm equal, and queries a 0 there: then L2 order is inner-product order
    (Bachrach et al., 2014), and HNSW searches a true metric.
    """

    def _new_index(self, candidates: np.ndarray) -> Any:
        index = faiss.IndexHNSWFlat(candidates.shape[1], HNSW_M, faiss.METRIC_L2)  # dim + 1
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return index

    def build(self, candidates: np.ndarray) -> None:
        norms_sq = np.einsum("nd,nd->n", candidates, candidates)
        extra = np.sqrt(np.maximum(norms_sq.max() - norms_sq, 0.0))[:, None]
        super().build(np.hstack([candidates, extra]).astype(np.float32))

    def to_device(self, queries: np.ndarray) -> Any:
        return np.hstack([queries, np.zeros((len(queries), 1), np.float32)])

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = dict(params)

    def search(self, queries: Any, k: int) -> np.ndarray:
        self.index.hnsw.efSearch = max(int(self.params.get("efSearch", 16)), k)
        return self.index.search(queries, k)[1]

    def resolved_options(self) -> dict[str, Any]:
        return {**super().resolved_options(), "M": HNSW_M, "reduction": "MIPS->L2",
                "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": self.index.hnsw.efSearch}
