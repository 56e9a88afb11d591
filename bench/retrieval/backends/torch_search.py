"""Native PyTorch: matmul + torch.topk, and its blocked variant (eager, inference_mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from bench.retrieval.backends.base import Searcher


class TorchSearcher(Searcher):
    """torch.topk on the scores, on CUDA when available, else CPU.

    Args:
        block: candidates per block (streaming variant: per-block topk, then
            one topk over the B x (N/block * k) survivors); None scores all at once.
    """

    framework: ClassVar[str] = "torch"
    sync_mechanism: ClassVar[str] = "torch.cuda.synchronize (GPU) + .cpu().numpy()"

    def __init__(self, block: int | None = None) -> None:
        self.block = block
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.candidates = torch.empty(0)

    def build(self, candidates: np.ndarray) -> None:
        self.candidates = torch.from_numpy(np.array(candidates, dtype=np.float32)).to(self.device)
        if self.block is not None and self.block >= len(candidates):
            self.block = None  # one block holds them all: the plain path
        self._sync()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def to_device(self, queries: np.ndarray) -> Any:
        q = torch.from_numpy(np.array(queries, dtype=np.float32)).to(self.device)
        self._sync()
        return q

    @torch.inference_mode()
    def search(self, queries: Any, k: int) -> Any:
        n = self.candidates.shape[0]
        if self.block is None:
            return torch.topk(queries @ self.candidates.T, k).indices  # (B, N) scores
        values, rows = [], []
        for start in range(0, n, self.block):
            top = torch.topk(queries @ self.candidates[start : start + self.block].T,
                             min(k, self.block, n - start))  # (B, block) scores; <= its rows
            values.append(top.values)
            rows.append(top.indices + start)
        best = torch.topk(torch.cat(values, 1), k).indices
        return torch.gather(torch.cat(rows, 1), 1, best)

    def to_numpy(self, result: Any) -> np.ndarray:
        self._sync()
        return result.cpu().numpy()

    @torch.inference_mode()
    def phases(self, queries: Any, k: int) -> dict[str, Callable[[], Any]]:
        if self.block is not None:
            return {}  # blocks interleave matmul and topk: no separate phases
        scores = queries @ self.candidates.T
        ids = torch.topk(scores, k).indices

        @torch.inference_mode()
        def timed(fn: Callable[[], Any]) -> Any:
            out = fn()
            self._sync()
            return out

        return {"matmul": lambda: timed(lambda: queries @ self.candidates.T),
                "top_k": lambda: timed(lambda: torch.topk(scores, k).indices),
                "transfer": lambda: ids.cpu().numpy()}

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def device_name(self) -> str:
        if self.device.type == "cuda":
            return f"cuda:0 ({torch.cuda.get_device_name(0)})"
        return "cpu"

    def resolved_options(self) -> dict[str, Any]:
        return {"block": self.block, "threads": torch.get_num_threads()}
