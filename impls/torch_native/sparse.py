"""Native PyTorch with sparse embedding updates (`torch-sparse`): only the batch's rows are touched.

`torch` looks its packed batches up in each tower's tables stacked with
torch.cat (impls/_packed.py): the stacking copies every table on every step,
and its gradient is dense, so Adagrad then reads and writes every row. Here
each step, still eager, on the same packed batches:

1. per tower, the distinct rows of the batch's stacked ids (`torch.unique`,
   sorted, so each table's rows are one run of them) and each id's index
   among them;
2. each table's run looked up with `F.embedding(..., sparse=True)` and the
   runs concatenated into one (S, D) block: no table is copied, and each
   table's gradient is a sparse tensor of its touched rows;
3. the loss (`RetrievalModel.loss`) on the blocks, the batch's ids replaced by
   their indices: the same values, and the gradient of a row seen n times is
   the sum of its n contributions, as the dense gradient is;
4. `torch.optim.Adagrad` on the tables, whose sparse path updates only the
   rows of a sparse gradient (not fused: the fused kernel takes dense
   gradients only), and the fused Adagrad of `torch` on the dense layers.

Both optimizers take `torch`'s settings (eps=0, the accumulator starting at
0.1 + 1e-7: Keras's update, impls/torch_native/impl.py). Adagrad leaves a
row with zero gradient exactly unchanged, so updating only the touched rows
is `torch`'s arithmetic up to float rounding (another kernel: the sparse
rows go through torch's single-tensor Adagrad, not the fused one); the parity
tests (tests/impls/test_sparse.py) compare the two step by step.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import accumulate
from typing import Any

import torch
import torch.nn.functional as F

from bench.weights import TOWER_EMBEDDINGS, Weights
from impls.torch_native import impl
from impls.torch_native.model import Batch, Tower

_EMBEDDED = {name for tables in TOWER_EMBEDDINGS.values() for name in tables.values()}


def touched_rows(tower: Tower, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the (S, D) rows of the tower's tables that stacked `ids` touch, each id's row among them).

    The rows are looked up table by table with sparse gradients, so backward
    reaches only them. Each table's run is found on the host (`tolist`: a
    sync on cuda, as torch.unique's own is).
    """
    weights = tower.tables()
    distinct, inverse = torch.unique(ids, sorted=True, return_inverse=True)
    starts = [0, *accumulate(len(w) for w in weights)]
    bounds = torch.searchsorted(distinct, distinct.new_tensor(starts)).tolist()
    blocks = [
        F.embedding(distinct[lo:hi] - start, w, sparse=True)
        for w, start, lo, hi in zip(weights, starts, bounds, bounds[1:], strict=False)
        if hi > lo
    ]
    return torch.cat(blocks), inverse


class TorchSparseRetrieval(impl.TorchRetrieval):
    """Native PyTorch, eager, updating only the embedding rows each batch touches.

    Otherwise `TorchRetrieval`: same packed batches, towers, loss and Adagrad.
    """

    data_parallel = False  # DDP with sparse gradients: not built (`torch` has --devices)

    def _make_step(self) -> Any:
        """The sparse step, with its optimizers: the tables' Adagrad apart from the dense one's.

        Called by `TorchRetrieval.__init__` once its optimizer exists: that one is
        replaced by one over the dense layers only.
        """
        tables = [p for name, (p, _) in self._params.items() if name in _EMBEDDED]
        dense = [p for name, (p, _) in self._params.items() if name not in _EMBEDDED]
        self._opt = self._adagrad(dense, self._optimizer_options())
        self._sparse_opt = self._adagrad(tables, {"foreach": False})
        return self._sparse_step

    def _adagrad(self, params: Iterable[torch.Tensor], options: dict[str, Any]) -> Any:
        return torch.optim.Adagrad(
            params, lr=self.spec.learning_rate,
            initial_accumulator_value=impl._TORCH_INITIAL_ACCUMULATOR, eps=0.0, **options,
        )

    def _sparse_step(self, batch: Batch) -> torch.Tensor:
        """One Adagrad step; returns the batch loss before the update (detached)."""
        self._opt.zero_grad(set_to_none=True)
        self._sparse_opt.zero_grad(set_to_none=True)
        query_rows, query_ids = touched_rows(self._model.query, batch["query_ids"])
        candidate_rows, candidate_ids = touched_rows(self._model.candidate, batch["candidate_ids"])
        indexed = {**batch, "query_ids": query_ids, "candidate_ids": candidate_ids}
        loss = self._model.loss(indexed, (query_rows, candidate_rows))
        loss.backward()
        self._opt.step()
        # Adagrad builds its sparse updates from the gradient's own (valid) indices:
        # no checks to run, and saying so keeps torch from warning that they are off.
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            self._sparse_opt.step()
        return loss.detach()

    @torch.no_grad()
    def import_weights(self, weights: Weights) -> None:
        super().import_weights(weights)  # resets the dense layers' Adagrad
        for state in self._sparse_opt.state.values():
            state["sum"].fill_(impl._TORCH_INITIAL_ACCUMULATOR)
            state["step"].zero_()
