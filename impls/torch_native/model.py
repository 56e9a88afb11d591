"""The deep retrieval model as torch.nn modules, with the neutral-layout weight mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from bench.data.dataset import Vocabulary
from bench.weights import embedding_rows, tower_input_dims
from impls._shared import CANDIDATE_EMBEDDINGS, MASKED_FEATURES, QUERY_EMBEDDINGS

Batch = Mapping[str, torch.Tensor]


def _module_name(weight_name: str) -> str:
    """"query/user_embedding" -> "user_embedding" (the attribute inside the tower)."""
    return weight_name.split("/", 1)[1]


def bag_mean(embedding: nn.Embedding, bag: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """masked_mean from a compact bag (impls/_batches.py): ids, segment, weight, count."""
    embedded = embedding(bag["ids"]) * bag["weight"].unsqueeze(-1)  # (N, D); padding weighs 0
    rows = bag["count"].shape[0]
    summed = embedded.new_zeros((rows, embedded.shape[1])).index_add(0, bag["segment"], embedded)
    return summed / bag["count"].unsqueeze(-1)  # (U, D)


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

    def stacked_table(self) -> torch.Tensor:
        """The tower's embedding tables as one, in concatenation order (impls/_packed.py)."""
        return torch.cat([self._embedding(w).weight for w in self.features.values()])

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
            value = batch[feature]
            if isinstance(value, Mapping):  # a compact bag (training batches)
                parts.append(bag_mean(embedding, value))
            elif feature in MASKED_FEATURES:
                parts.append(masked_mean(embedding, value))
            else:
                parts.append(embedding(value))
        return self.dense_forward(torch.cat(parts, dim=1))


class RetrievalModel(nn.Module):
    """Query and candidate towers; `forward` is the training loss."""

    def __init__(self, vocab: Vocabulary, layer_sizes: tuple[int, ...], embedding_dim: int) -> None:
        super().__init__()
        rows = embedding_rows(vocab)
        dims = tower_input_dims(embedding_dim)
        self.query = Tower(QUERY_EMBEDDINGS, rows, dims["query"], layer_sizes, embedding_dim)
        self.candidate = Tower(
            CANDIDATE_EMBEDDINGS, rows, dims["candidate"], layer_sizes, embedding_dim
        )

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """MSE between dot(query, candidate) and the label, averaged over the batch.

        Row-wise, as the Keras model: both towers on every rating's padded inputs.
        """
        return mse(self.query(batch), self.candidate(batch), batch["label"])

    def packed_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """forward's loss from a table-batched batch with bag offsets (impls/_packed.py).

        One lookup per tower: the query tables stacked, gathered and reshaped
        to the concatenation; the candidate's movie, title and genre ids as
        one F.embedding_bag over the stacked candidate tables, a bag per row
        and feature, divided by the real-id count (an empty bag stays 0/0 =
        NaN, as in Keras). Same arithmetic as forward; the stacking's gradient
        is a slice back into each nn.Embedding.
        """
        rows = batch["label"].shape[0]
        query_in = F.embedding(batch["query_ids"], self.query.stacked_table()).reshape(rows, -1)
        sums = F.embedding_bag(
            batch["candidate_ids"], self.candidate.stacked_table(), batch["offsets"], mode="sum"
        )
        cand_in = (sums / batch["count"].unsqueeze(-1)).reshape(rows, -1)
        query, cand = self.query.dense_forward(query_in), self.candidate.dense_forward(cand_in)
        return mse(query, cand, batch["label"])

    def dedup_loss(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """forward's loss from a deduplicated batch (impls/_batches.py).

        Each tower runs once per distinct input row and the ratings gather
        their embeddings back; same value and gradients up to summation order.
        """
        query = self.query(batch["query"])[batch["query_index"]]  # (B, out)
        cand = self.candidate(batch["candidate"])[batch["candidate_index"]]  # (B, out)
        return mse(query, cand, batch["label"])

    def neutral_parameters(self) -> dict[str, tuple[torch.Tensor, bool]]:
        """Neutral weight name -> (parameter, transposed): Linear weights are (out, in)."""
        out: dict[str, tuple[torch.Tensor, bool]] = {}
        for tower_name, tower in (("query", self.query), ("candidate", self.candidate)):
            for name, emb in tower.embeddings.items():
                out[f"{tower_name}/{name}"] = (cast(nn.Embedding, emb).weight, False)
            for i, module in enumerate(tower.dense):
                layer = cast(nn.Linear, module)
                out[f"{tower_name}/dense_{i}/kernel"] = (layer.weight, True)
                out[f"{tower_name}/dense_{i}/bias"] = (layer.bias, False)
        return out
