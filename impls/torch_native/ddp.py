"""torch `--devices N`: DistributedDataParallel, one process per device, rank 0 the run's worker.

Rank 0 is the implementation in the worker process: its model is the run's
model, so evaluation, retrieval, embeddings and weight export stay on rank 0
as on one device. Ranks 1..N-1 are helper processes (`python -m
impls.torch_native.ddp_rank`) the implementation starts: each is told its
setup on stdin, dies with the worker (bench.process.die_with_parent) and
sits in the worker's process group, so whatever stops the run stops them.
Rank 0 leads with one broadcast command per operation (train k steps,
take rank 0's weights, stop); collectives: gloo on CPU (bound to loopback),
NCCL on GPUs (rank r on cuda:r).

Fixed global batch: every global batch is cut into N contiguous slices, one
per rank. Each rank's loss is its slice's mean; DDP averages the ranks'
gradients. That average is the global mean's gradient only when the slices
are equal, and the short last batch may not divide by N, so each rank's loss
is weighted by n_r * N / n (n_r its rows, n the batch's): DDP's average of
the weighted gradients is then sum_r (n_r / n) grad(mean_r), the global
mean's gradient exactly in real arithmetic (the weight is 1.0 for equal
slices: nothing changes there). The step loss reported is
sum_r (n_r / n) mean_r, one all-reduce per epoch. A batch with fewer rows
than N would leave a rank an empty slice: refused.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bench.data.dataset import Vocabulary
from bench.process import PARENT_PID_VAR, worker_env
from impls.torch_native.model import Batch, RetrievalModel

log = logging.getLogger(__name__)

MECHANISM = "torch.nn.parallel.DistributedDataParallel"
HOST = "127.0.0.1"  # every rank on this machine, on loopback
RANK_MODULE = "impls.torch_native.ddp_rank"
TIMEOUT = timedelta(minutes=10)  # a collective waiting longer than this fails the run
EXIT_GRACE_S = 30  # how long a stopped helper rank may take to exit before it is killed
_TRAIN, _IMPORT, _STOP = 0, 1, 2
HostBatch = dict[str, np.ndarray]


def collective(device: torch.device) -> str:
    """The backend for `device`: NCCL on GPUs, gloo on CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device, rank: int) -> torch.device:
    """Rank r's device: cuda:r on GPUs, the CPU otherwise."""
    return torch.device("cuda", rank) if device.type == "cuda" else device


def split_batches(
    host: Sequence[HostBatch], world: int
) -> tuple[list[list[HostBatch]], np.ndarray]:
    """(per rank, its contiguous slice of every batch; (steps, world) loss weights n_r * N / n).

    Raises ValueError when a batch has fewer rows than `world` (an empty slice).
    """
    slices: list[list[HostBatch]] = [[] for _ in range(world)]
    weights = np.ones((len(host), world))
    for step, batch in enumerate(host):
        n = len(batch["label"])
        if n < world:
            raise ValueError(f"--devices {world}: batch {step} has {n} rows, fewer than devices")
        bounds = [n * r // world for r in range(world + 1)]
        for r in range(world):
            slices[r].append({k: v[bounds[r]:bounds[r + 1]] for k, v in batch.items()})
            weights[step, r] = (bounds[r + 1] - bounds[r]) * world / n
    return slices, weights


@dataclass(frozen=True)
class RankSetup:
    """What a helper rank needs to build its replica (sent pickled on its stdin)."""

    rank: int
    world: int
    port: int  # rank 0's TCPStore
    device: str  # the run's device type: "cpu" or "cuda"
    vocab: Vocabulary
    layer_sizes: tuple[int, ...]
    embedding_dim: int
    learning_rate: float
    optimizer_options: dict[str, Any]
    batches: list[dict[str, np.ndarray]]  # the rank's training batches, in the run's layout
    weights: list[float]  # per step, the rank's loss weight


class _WeightedLoss(nn.Module):
    """The training loss times a weight: what DDP wraps (it must see the forward call)."""

    def __init__(self, model: RetrievalModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, weight: float) -> torch.Tensor:
        return self.model.loss(batch) * weight


class Replica:
    """One rank's training, the same on every rank: DDP over the loss, the rank's optimizer."""

    def __init__(self, model: RetrievalModel, opt: torch.optim.Optimizer,
                 batches: Sequence[Batch], weights: Sequence[float], world: int) -> None:
        self.model, self.opt, self.world = model, opt, world
        self.batches, self.weights = batches, list(weights)
        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        # Construction broadcasts rank 0's parameters: every replica starts equal.
        self.ddp = DistributedDataParallel(_WeightedLoss(model), device_ids=ids)

    def _step(self, batch: Batch, weight: float) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = self.ddp(batch, weight)
        loss.backward()  # DDP all-reduces (averages) the gradients here
        self.opt.step()
        return loss.detach() / self.world  # (n_r / n) * the slice's mean

    def train(self, steps: int) -> torch.Tensor:
        """`steps` steps; each step's global mean loss (summed over ranks)."""
        pairs = zip(self.batches[:steps], self.weights, strict=False)
        shares = [self._step(b, w) for b, w in pairs]
        device = next(self.model.parameters()).device
        out = torch.stack(shares) if shares else torch.zeros(0, device=device)
        dist.all_reduce(out)
        return out

    @torch.no_grad()
    def take_weights(self, reset: Callable[[torch.optim.Optimizer], None]) -> None:
        """Every parameter from rank 0; the optimizer state reset (import_weights)."""
        for p in self.model.parameters():
            dist.broadcast(p, 0)
        reset(self.opt)


def command(device: torch.device, op: int = 0, arg: int = 0) -> tuple[int, int]:
    """Rank 0's (op, arg) to every rank: rank 0 sends it, the others receive it."""
    t = torch.tensor([op, arg], dtype=torch.int64, device=device)
    dist.broadcast(t, 0)
    return int(t[0]), int(t[1])


def run_commands(replica: Replica, device: torch.device,
                 reset: Callable[[torch.optim.Optimizer], None]) -> None:
    """A helper rank's life: follow rank 0's commands until it says stop."""
    while True:
        op, arg = command(device)
        if op == _STOP:
            return
        if op == _TRAIN:
            replica.train(arg)
        else:
            replica.take_weights(reset)


class DataParallel:
    """Rank 0 of a DDP group, in the worker; starts and stops ranks 1..N-1.

    Args:
        model, opt: rank 0's (the run's) model and optimizer.
        setups: per helper rank, its setup less the port (filled in here).
        batches, weights: rank 0's training batches (on its device) and loss weights.
    """

    def __init__(self, model: RetrievalModel, opt: torch.optim.Optimizer,
                 setups: list[RankSetup], batches: Sequence[Batch],
                 weights: Sequence[float]) -> None:
        world = len(setups) + 1
        self.device = next(model.parameters()).device
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's pairs on loopback too
        # Port 0: the store picks a free one; it must not wait here for ranks not yet started.
        store = dist.TCPStore(HOST, 0, world, is_master=True, timeout=TIMEOUT,
                              wait_for_workers=False)
        self.procs = [_start_rank(RankSetup(**{**s.__dict__, "port": store.port})) for s in setups]
        dist.init_process_group(collective(self.device), store=store, rank=0,
                                world_size=world, timeout=TIMEOUT)
        self.replica = Replica(model, opt, batches, weights, world)

    def info(self, global_batch: int, layout: str) -> dict[str, Any]:
        """The record's description of the data-parallel run (resolved_options)."""
        world = self.replica.world
        devices = [str(rank_device(self.device, r)) for r in range(world)]
        return {"devices": world, "global_batch": global_batch,
                "per_device_batch": global_batch // world, "mechanism": MECHANISM,
                "collective": collective(self.device), "layout": layout,
                "device_list": devices, "simulated": self.device.type == "cpu"}

    def train(self, steps: int) -> torch.Tensor:
        command(self.device, _TRAIN, steps)
        return self.replica.train(steps)

    def share_weights(self, reset: Callable[[torch.optim.Optimizer], None]) -> None:
        """Rank 0's weights to every rank, every optimizer reset (after rank 0's import)."""
        command(self.device, _IMPORT)
        self.replica.take_weights(reset)

    def close(self) -> None:
        """Stop the helper ranks and leave the group."""
        if not self.procs:
            return
        command(self.device, _STOP)
        for proc in self.procs:
            try:
                proc.wait(timeout=EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                # Its work ended with _STOP; only its teardown is left. One rank's exit hung
                # there (its stack at os._exit, rank 0 waiting here: once in about four full
                # test suites), so a rank that outlives the grace period is killed.
                log.warning("helper rank %d did not exit %d s after stop; killed",
                            proc.pid, EXIT_GRACE_S)
                proc.kill()
                proc.wait()
        self.procs = []
        dist.destroy_process_group()


def _start_rank(setup: RankSetup) -> subprocess.Popen[bytes]:
    """A helper rank's process: dies with this one (PARENT_PID_VAR), setup on its stdin."""
    env = worker_env({PARENT_PID_VAR: str(os.getpid()), "GLOO_SOCKET_IFNAME": "lo"})
    proc = subprocess.Popen([sys.executable, "-m", RANK_MODULE], stdin=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    pickle.dump(setup, proc.stdin)
    proc.stdin.close()
    return proc
