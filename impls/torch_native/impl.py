"""Native PyTorch implementations: `TorchRetrieval` (eager), `TorchCompiledRetrieval` and
`TorchDedupRetrieval` (eager, deduplicated batches).

The first two compute what the Keras model computes, each tower row by row,
batches = contiguous row-order slices of the train split. They differ in the
batch layout (impls/_packed.py) they train on, through one loss
(model.RetrievalModel.loss): `TorchRetrieval` takes "packed" batches (one
F.embedding and one F.embedding_bag per step); `TorchCompiledRetrieval` the
padded "rows" Keras takes, one lookup per feature. `TorchDedupRetrieval`
takes "distinct" batches, the towers once per distinct row: less arithmetic,
same result up to summation order.

Same arithmetic, torch's own kernels: the title and genre masked means are
F.embedding_bag sums divided by the count of real ids, and eager Adagrad runs
fused (one kernel per parameter); both were measured, see model.masked_mean
and TorchRetrieval._optimizer_options.

Optimiser: torch.optim.Adagrad. Its update is  p -= lr * g / (sqrt(acc) + eps)
(eps outside the sqrt) while Keras's is  p -= lr * g / sqrt(acc + eps).  We pass
eps=0 and start the accumulator at 0.1 + 1e-7, which is the Keras update
exactly in real arithmetic (sqrt(acc + eps) with eps folded into acc); in
float32 the two differ only by the rounding of that addition (~1 ulp of acc).

`--devices N` (N > 1): DistributedDataParallel, rank 0 this object, ranks
1..N-1 helper processes (impls/torch_native/ddp.py); eager `torch` and
`torch-dedup` only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from bench.contract import RetrievalImpl
from bench.data.dataset import Dataset
from bench.spec import RunSpec
from bench.weights import Weights, check_weights, weight_shapes
from impls import _packed, _shared
from impls.torch_native import ddp
from impls.torch_native.model import Batch, RetrievalModel

# See the module docstring: Keras's eps, moved inside the accumulator.
_TORCH_INITIAL_ACCUMULATOR = _shared.ADAGRAD_INITIAL_ACCUMULATOR + _shared.ADAGRAD_EPSILON


def to_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host array -> tensor on `device`; int ids become int64 (nn.Embedding's index type)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device, dtype=torch.int64 if a.dtype.kind in "iu" else torch.float32)


def adagrad(model: torch.nn.Module, lr: float, options: Mapping[str, Any]) -> torch.optim.Adagrad:
    """Keras's Adagrad in torch (see the module docstring), with the variant's `options`."""
    return torch.optim.Adagrad(
        model.parameters(), lr=lr, initial_accumulator_value=_TORCH_INITIAL_ACCUMULATOR,
        eps=0.0, **options,
    )


def reset_adagrad(opt: torch.optim.Optimizer) -> None:
    """Adagrad's state back to its start, in place (a new optimizer object would make
    torch.compile recompile)."""
    for state in opt.state.values():
        state["sum"].fill_(_TORCH_INITIAL_ACCUMULATOR)
        state["step"].zero_()


def resolve_device(request: str) -> torch.device:
    """The torch device for `spec.device` (auto: cuda when available, else cpu)."""
    _shared.check_device_request(request)
    if request == "gpu" and not torch.cuda.is_available():
        raise _shared.no_gpu_error("torch")
    if request == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


class TorchRetrieval(RetrievalImpl):
    """Native PyTorch, eager: nn.Embedding, nn.Linear, torch.optim.Adagrad."""

    framework: ClassVar[str] = "torch"
    sync_mechanism: ClassVar[str] = (
        "torch.cuda.synchronize on cuda; none on cpu (eager CPU ops are synchronous)"
    )
    layout: ClassVar[str] = "packed"  # of the training batches (impls/_packed.py)
    bags: ClassVar[bool] = True  # packed batches as F.embedding_bag takes them (no padding)
    data_parallel: ClassVar[bool] = True  # takes --devices N > 1 (impls/torch_native/ddp.py)

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        super().__init__(spec, data, weights)
        self._device = resolve_device(spec.device)
        self._shapes = weight_shapes(data.vocab, spec.layer_sizes, spec.embedding_dim)
        self._model = RetrievalModel(data.vocab, spec.layer_sizes, spec.embedding_dim)
        self._model.to(self._device)
        self._params = self._model.neutral_parameters()
        self._opt = adagrad(self._model, spec.learning_rate, self._optimizer_options())
        host = _packed.run_arrays(data, spec.batch_size, self.layout, self.bags)
        self._parallel: ddp.DataParallel | None = None
        devices = getattr(spec, "devices", 1)
        if devices > 1:
            host = self._start_parallel(host, devices)
        self._arrays = host.map(self._tensors)
        self._k = _shared.effective_k(spec.top_k, data)
        self._step = self._make_step()
        self.import_weights(weights)
        self.refresh_candidates()

    def _optimizer_options(self) -> dict[str, Any]:
        """Eager: fused=True, the same Adagrad update in one kernel per parameter.

        The default on CPU is a Python loop of several small ops per parameter;
        fused gives the same arithmetic (to float rounding) in about 20% less
        epoch time at depth 1 here.
        """
        return {"fused": True}

    def _start_parallel(self, host: _packed.RunArrays[Any], devices: int) -> _packed.RunArrays[Any]:
        """Start DDP over `devices` ranks; `host` with rank 0's slices as its training batches."""
        if not self.data_parallel:
            raise ValueError(f"{self.spec.impl}: --devices above 1 is not supported")
        full = _shared.host_batches(self.data.train, self.spec.batch_size)
        slices, weights = ddp.split_batches(full, devices)
        ranks = [_packed.train_batches(s, self.data.vocab, self.layout, self.bags) for s in slices]
        setups = [
            ddp.RankSetup(
                rank=r, world=devices, port=0, device=self._device.type, vocab=self.data.vocab,
                layer_sizes=self.spec.layer_sizes, embedding_dim=self.spec.embedding_dim,
                learning_rate=self.spec.learning_rate,
                optimizer_options=self._optimizer_options(), batches=ranks[r],
                weights=weights[:, r].tolist(),
            )
            for r in range(1, devices)
        ]
        self._parallel = ddp.DataParallel(
            self._model, self._opt, setups, [self._tensors(b) for b in ranks[0]],
            weights[:, 0].tolist(),
        )
        return dataclasses.replace(host, train=ranks[0])

    def close_parallel(self) -> None:
        """Stop the helper ranks (--devices N > 1); a no-op on one device."""
        if self._parallel is not None:
            self._parallel.close()
            self._parallel = None

    def resolved_options(self) -> dict[str, Any]:
        if self._parallel is None:
            return {}
        return {"data_parallel": self._parallel.info(self.spec.batch_size, self.layout)}

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return to_tensor(a, self._device)

    def _tensors(self, arrays: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """A dict of host arrays as device tensors."""
        return {k: self._tensor(v) for k, v in arrays.items()}

    def _make_step(self) -> Any:
        """The training step the epoch loop calls (eager here; compiled in the subclass)."""
        return self._train_step

    def _train_step(self, batch: Batch) -> torch.Tensor:
        """One Adagrad step; returns the batch loss before the update (detached)."""
        self._opt.zero_grad(set_to_none=True)
        loss = self._model.loss(batch)
        loss.backward()
        self._opt.step()
        return loss.detach()

    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        steps = _shared.steps_to_run(self.spec, self.data, max_steps)
        self._model.train()
        self.loop_hooks.begin()
        if self._parallel is not None:
            out = self._parallel.train(steps).cpu().numpy().astype(np.float64)
        else:
            losses = [self._step(batch) for batch in self._arrays.train[:steps]]
            out = torch.stack(losses).cpu().numpy().astype(np.float64) if losses else np.zeros(0)
        self.loop_hooks.end()
        return out

    @torch.no_grad()
    def refresh_candidates(self) -> None:
        self._cand_emb = self._model.candidate(self._arrays.candidates)

    @torch.no_grad()
    def evaluate(self) -> float:
        hits = torch.zeros((), device=self._device)
        total = torch.zeros((), device=self._device)
        movie_ids = self._arrays.candidates["movie_id"]
        for batch in self._arrays.test:
            rows = torch.topk(self._model.query(batch) @ self._cand_emb.T, self._k).indices
            hit = (movie_ids[rows] == batch["movie_id"][:, None]).any(dim=1)
            weight = (batch["label"] > 0.9).float()  # the reference's greater(y, 0.9)
            hits += (hit.float() * weight).sum()
            total += weight.sum()
        return float(hits / total) if float(total) else 0.0

    @torch.no_grad()
    def candidate_embeddings(self) -> np.ndarray:
        return self._model.candidate(self._arrays.candidates).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def query_embeddings(self, split: Literal["train", "test"]) -> np.ndarray:
        return self._model.query(self._arrays.queries[split]).cpu().numpy().astype(np.float32)

    def to_device(self, queries: np.ndarray) -> Any:
        return self._tensor(np.asarray(queries, dtype=np.float32))

    @torch.no_grad()
    def retrieve(self, queries: Any, k: int) -> Any:
        return torch.topk(queries @ self._cand_emb.T, _shared.effective_k(k, self.data)).indices

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.cpu().numpy()

    def synchronize(self, x: Any = None) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)

    def export_weights(self) -> Weights:
        return {
            name: (p.detach().T if transposed else p.detach()).cpu().numpy().astype(np.float32)
            for name, (p, transposed) in self._params.items()
        }

    @torch.no_grad()
    def import_weights(self, weights: Weights) -> None:
        check_weights(weights, self._shapes)
        for name, (p, transposed) in self._params.items():
            w = torch.from_numpy(np.array(weights[name], dtype=np.float32))
            p.copy_(w.T if transposed else w)
        reset_adagrad(self._opt)
        if self._parallel is not None:
            self._parallel.share_weights(reset_adagrad)

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def device_name(self) -> str:
        if self._device.type == "cuda":
            return f"cuda:{self._device.index} ({torch.cuda.get_device_name(self._device)})"
        return "cpu"

    def peak_device_memory_mb(self) -> float | None:
        if self._device.type == "cuda":
            return torch.cuda.max_memory_allocated(self._device) / 2**20
        return None


class TorchCompiledRetrieval(TorchRetrieval):
    """Native PyTorch with the training step (forward, backward, Adagrad) under torch.compile.

    On the padded row-wise inputs (one lookup per feature): the packed ones
    vary in length from batch to batch. Shapes are static (dynamic=False):
    the short last batch gets its own specialised graph on the first epoch
    instead of a dynamic-shape one.
    """

    layout: ClassVar[str] = "rows"  # static shapes for the compiled step
    data_parallel: ClassVar[bool] = False  # DDP under torch.compile: not built

    def _make_step(self) -> Any:
        return torch.compile(self._train_step, dynamic=False)

    def _optimizer_options(self) -> dict[str, Any]:
        """Inductor compiles the default (unfused) update into its own kernels."""
        return {}


class TorchDedupRetrieval(TorchRetrieval):
    """Native PyTorch, eager, on deduplicated ("distinct") batches (impls/_packed.py).

    Each tower runs once per distinct input row of a batch and the ratings
    gather their rows back; title/genre means are index_add sums over the
    real ids only (padding skipped). Less arithmetic, same result up to
    float summation order: an algorithmic shortcut any framework could use.
    """

    layout: ClassVar[str] = "distinct"
    bags: ClassVar[bool] = False  # see model.RetrievalModel.segment_sums
