"""A helper rank (1..N-1) of torch's DDP run: `python -m impls.torch_native.ddp_rank`.

Started by rank 0 (impls/torch_native/ddp.py), which writes its pickled
RankSetup on stdin; it builds the same model and optimizer as rank 0, joins
the group and follows rank 0's commands, then exits. It dies with rank 0's
process (die_with_parent) and fails when rank 0 stops answering.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import sys

import torch
import torch.distributed as dist

from bench.process import die_with_parent
from impls.torch_native import ddp, impl
from impls.torch_native.model import RetrievalModel


def main() -> int:
    die_with_parent()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: its stacks, on stderr
    setup: ddp.RankSetup = pickle.load(sys.stdin.buffer)
    device = ddp.rank_device(torch.device(setup.device), setup.rank)
    model = RetrievalModel(setup.vocab, setup.layer_sizes, setup.embedding_dim).to(device)
    opt = impl.adagrad(model, setup.learning_rate, setup.optimizer_options)
    batches = [{k: impl.to_tensor(v, device) for k, v in b.items()} for b in setup.batches]
    store = dist.TCPStore(ddp.HOST, setup.port, setup.world, is_master=False, timeout=ddp.TIMEOUT)
    dist.init_process_group(ddp.collective(device), store=store, rank=setup.rank,
                            world_size=setup.world, timeout=ddp.TIMEOUT)
    replica = ddp.Replica(model, opt, batches, setup.weights, setup.world)
    ddp.run_commands(replica, device, impl.reset_adagrad)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # no interpreter teardown (as bench.process.child_main)
