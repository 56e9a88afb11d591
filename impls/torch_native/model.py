"""The deep retrieval model as torch.nn modules, with the neutral-layout weight mapping.

The towers take the Keras model's padded rows (inference, and
`torch-compile`'s training); `RetrievalModel.loss`, the training loss, takes
every training layout of impls/_packed.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from bench.data.dataset import Vocabulary
from bench.weights import (
    CANDIDATE_EMBEDDINGS,
    QUERY_EMBEDDINGS,
    dense_names,
    embedding_rows,
    tower_input_dims,
)
from impls._shared import MASKED_FEATURES

Batch = Mapping[str, torch.Tensor]
Tables = tuple[torch.Tensor, torch.Tensor]  # (query, candidate) tables a packed batch indexes


def _module_name(weight_name: str) -> str:
    """"query/user_embedding" -> "user_embedding" (the attribute inside the tower)."""
    return weight_name.split("/", 1)[1]


def masked_mean(embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """(B, D) mean over the non-zero ids (Keras GlobalAveragePooling1D mask semantics).

    Keras computes sum(x * mask) / sum(mask); F.embedding_bag's "sum" with
    padding_idx=0 is that numerator in one fused kernel (forward and backward)
    instead of a (B, L, D) gather, multiply and reduce. An all-padding row
    stays 0/0 = NaN, as in Keras.
    """
    summed = F.embedding_bag(ids, embedding.weight, mode="sum", padding_idx=0)
    return summed / (ids != 0).sum(dim=1, keepdim=True).to(summed.dtype)


def mse(query: torch.Tensor, candidate: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """MSE between each row's dot(query, candidate) and its label, averaged over the batch."""
    return torch.mean(torch.square(label - (query * candidate).sum(dim=1)))


class Tower(nn.Module):
    """Embeddings of the tower's features, concatenated, then the dense stack."""

    def __init__(
        self, features: Mapping[str, str], rows: Mapping[str, int], in_dim: int,
        layer_sizes: tuple[int, ...], embedding_dim: int,
    ) -> None:
        super().__init__()
        self.features = dict(features)  # feature -> neutral weight name, in concat order
        self.embeddings = nn.ModuleDict(
            {_module_name(w): nn.Embedding(rows[w], embedding_dim) for w in features.values()}
        )
        widths = (in_dim, *layer_sizes)
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)

    def tables(self) -> list[torch.Tensor]:
        """The tower's embedding tables (weights), in concatenation order."""
        return [self._embedding(w).weight for w in self.features.values()]

    def stacked_table(self) -> torch.Tensor:
        """The tower's embedding tables as one, in concatenation order (impls/_packed.py)."""
        return torch.cat(self.tables())

    def _embedding(self, weight_name: str) -> nn.Embedding:
        return cast(nn.Embedding, self.embeddings[_module_name(weight_name)])

    def dense_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The dense stack: ReLU on all but the last layer."""
        for i, layer in enumerate(self.dense):
            x = layer(x)
            if i < len(self.dense) - 1:
                x = torch.relu(x)
        return x

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        parts = []
        for feature, weight_name in self.features.items():
            embedding = self._embedding(weight_name)
            if feature in MASKED_FEATURES:
                parts.append(masked_mean(embedding, batch[feature]))
            else:
                parts.append(embedding(batch[feature]))
        return self.dense_forward(torch.cat(parts, dim=1))


class RetrievalModel(nn.Module):
    """Query and candidate towers; `loss` is the training loss."""

    def __init__(self, vocab: Vocabulary, layer_sizes: tuple[int, ...], embedding_dim: int) -> None:
        super().__init__()
        rows = embedding_rows(vocab)
        dims = tower_input_dims(embedding_dim)
        self.query = Tower(QUERY_EMBEDDINGS, rows, dims["query"], layer_sizes, embedding_dim)
        self.candidate = Tower(
            CANDIDATE_EMBEDDINGS, rows, dims["candidate"], layer_sizes, embedding_dim
        )

    def loss(self, batch: Batch, tables: Tables | None = None) -> torch.Tensor:
        """The training loss, MSE between dot(query, candidate) and the label, batch mean.

        On a batch in any layout of impls/_packed.py: "rows" as the Keras model
        (both towers on every rating's padded inputs), "packed" with one lookup
        per tower, "distinct" packed over each tower's distinct rows, whose
        towers' outputs each rating gathers back (same value and gradients).
        tables: as for `packed_inputs`.
        """
        if "query_ids" in batch:
            query_in, cand_in = self.packed_inputs(batch, tables)
            query = self.query.dense_forward(query_in)
            cand = self.candidate.dense_forward(cand_in)
        else:
            query, cand = self.query(batch), self.candidate(batch)
        if "query_index" in batch:
            query, cand = query[batch["query_index"]], cand[batch["candidate_index"]]
        return mse(query, cand, batch["label"])

    def packed_inputs(
        self, batch: Batch, tables: Tables | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both towers' inputs from a packed batch (impls/_packed.py): one lookup per tower.

        The query tables stacked, gathered and reshaped to the concatenation;
        the candidate's movie, title and genre ids summed per segment (a row
        and feature) over the stacked candidate tables and divided by the
        real-id count (an empty segment stays 0/0 = NaN, as in Keras). Same
        arithmetic as the rows' lookups; the stacking's gradient is a slice
        back into each nn.Embedding.

        tables: (query, candidate) tables the batch's ids index instead of the
        stacked ones (torch-sparse, impls/torch_native/sparse.py: each tower's
        distinct rows, the ids their indices among them).
        """
        query_table, candidate_table = tables or (
            self.query.stacked_table(), self.candidate.stacked_table()
        )
        query_ids = batch["query_ids"]  # (R, 5)
        query_in = F.embedding(query_ids, query_table).reshape(len(query_ids), -1)
        count = batch["count"]  # (R * 3,)
        means = self.segment_sums(batch, candidate_table) / count.unsqueeze(-1)
        return query_in, means.reshape(len(count) // len(CANDIDATE_EMBEDDINGS), -1)

    def segment_sums(self, batch: Batch, table: torch.Tensor) -> torch.Tensor:
        """(S, D) sums of each segment's entries of `table` (the stacked candidate table).

        With bag "offsets" (`TorchRetrieval`), one F.embedding_bag, fused
        forward and backward; else (`TorchDedupRetrieval`) a gather and an
        index_add into S + 1 rows, the spare one dropped. Both sum a segment
        in entry order, but embedding_bag's backward adds up a table row's
        gradients in another order (it sorts the ids first), the gather's in
        entry order: the -dedup variant keeps the latter, its arithmetic since
        it was written (embedding_bag moves its weights by ~1e-9).
        """
        if "offsets" in batch:
            return F.embedding_bag(batch["candidate_ids"], table, batch["offsets"], mode="sum")
        entries = F.embedding(batch["candidate_ids"], table)  # (E, D)
        sums = entries.new_zeros((len(batch["count"]) + 1, entries.shape[1]))
        return sums.index_add(0, batch["segment"], entries)[:-1]

    def neutral_parameters(self) -> dict[str, tuple[torch.Tensor, bool]]:
        """Neutral weight name -> (parameter, transposed): Linear weights are (out, in)."""
        out: dict[str, tuple[torch.Tensor, bool]] = {}
        for tower_name, tower in (("query", self.query), ("candidate", self.candidate)):
            for name, emb in tower.embeddings.items():
                out[f"{tower_name}/{name}"] = (cast(nn.Embedding, emb).weight, False)
            for i, module in enumerate(tower.dense):
                layer, (kernel, bias) = cast(nn.Linear, module), dense_names(tower_name, i)
                out[kernel], out[bias] = (layer.weight, True), (layer.bias, False)
        return out
