"""Top-100 retrieval of one implementation, timed request by request in its own child process.

Parent side (imports no framework): `RetrievalServer` starts
`python -m tests.impls.retrieval_server --impl NAME`, which builds the
implementation on tests.harness.fake_data.medium (400 candidates, so top-100
is a real selection), refreshes its candidates, converts one fixed block of
query embeddings to the device (outside any timing) and warms `retrieve` up
(compilation). Then each `retrieve` request runs impl.retrieve on that block
and synchronises on the result, answering with its seconds. `ping` answers at
once: the round trip every request carries (stdin, then the event pipe).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

from bench import registry
from bench.spec import RunSpec, layers_for_depth
from bench.studies.child_server import Answer, ChildServer, Handlers, serve
from bench.weights import init_weights

QUERIES = 500  # rows of the fixed query block
K = 100
WARMUP_CALLS = 3


class RetrievalServer(ChildServer):
    """A child process holding one built implementation and a device-resident query block."""

    def __init__(self, name: str, depth: int = 1) -> None:
        args = ["--impl", name, "--depth", str(depth)]
        super().__init__(name, "tests.impls.retrieval_server", args)

    def retrieve(self) -> float:
        """One synchronised top-K retrieval of the query block in the child; its own seconds."""
        return float(self.ask("retrieve")["seconds"])

    def ping(self) -> None:
        """A request that does nothing: times the pipe round trip."""
        self.ask("ping")


def _build(name: str, depth: int) -> tuple[Answer, Handlers]:
    """Build, load the query block, warm up; the info, and the `retrieve` and `ping` requests."""
    from tests.harness.fake_data import medium

    data = medium()
    spec = RunSpec(impl=name, layer_sizes=layers_for_depth(depth), top_k=K, device="cpu")
    impl = registry.get(name).load()(spec, data, init_weights(data.vocab, spec.layer_sizes, 32, 0))
    impl.refresh_candidates()
    block = np.random.default_rng(0).standard_normal((QUERIES, spec.layer_sizes[-1]))
    queries = impl.to_device(block.astype(np.float32))  # outside every timed call
    for _ in range(WARMUP_CALLS):
        impl.synchronize(impl.retrieve(queries, K))
    top = impl.to_numpy(impl.retrieve(queries, K))
    info = {"ready": True, "versions": impl.versions(), "queries": QUERIES, "k": K,
            "candidates": len(impl.candidate_embeddings()), "result_shape": list(top.shape)}

    def retrieve() -> Answer:
        start = time.perf_counter()
        impl.synchronize(impl.retrieve(queries, K))
        return {"seconds": time.perf_counter() - start}

    return info, {"retrieve": retrieve, "ping": lambda: {}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="(child) top-K retrieval server")
    p.add_argument("--impl", required=True)
    p.add_argument("--depth", type=int, default=1)
    args = p.parse_args(argv)
    serve(partial(_build, args.impl, args.depth))


if __name__ == "__main__":
    main()
