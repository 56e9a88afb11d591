"""Steady-state epoch timing of the implementations, each in its own child process.

Parent side (imports no framework): `EpochServer` starts a child that builds
one implementation, trains two warm-up epochs (compilation, the short last
batch's trace) and then trains one epoch per request, synchronised with the
implementation's own mechanism. `measure()` collects medians; running this
module prints the ratios the issue asks for:

    python -m bench.studies.speed [--data standin|ml-100k|tiny] [--rounds 5] [--impl a,b]

Child side (`python -m bench.studies.speed --serve`, through
bench.studies.child_server.serve): answers `epoch`, and `feed`: for Keras the
time to iterate one epoch of its fit input as Keras does (the feeding cost,
measured without training).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from typing import Any

from bench import registry
from bench.data.dataset import Dataset
from bench.process import interruptible
from bench.run.sweep import parse_int_list
from bench.spec import RunSpec, layers_for_depth
from bench.studies.child_server import Answer, ChildServer, Handlers, serve
from bench.weights import init_weights


def load_data(kind: str) -> Dataset:
    """tiny: the test fixture; standin: ml-100k-shaped synthetic; ml-100k: the real cache."""
    from tests.fixtures import make_dataset

    if kind == "tiny":
        return make_dataset()
    if kind == "standin":
        return make_dataset(n_train=80000, n_test=20000)
    from bench.data.cache import load_dataset

    return load_dataset(kind)


class EpochServer(ChildServer):
    """A child process holding one built implementation; `epoch()` trains one more epoch."""

    def __init__(self, name: str, depth: int, data: str, batch_size: int = 1000) -> None:
        args = ["--serve", "--impl", name, "--depth", str(depth), "--data", data,
                "--batch-size", str(batch_size)]
        super().__init__(name, "bench.studies.speed", args)

    def epoch(self) -> float:
        """Train one epoch in the child; its own (synchronised) seconds."""
        return float(self.ask("epoch")["seconds"])

    def feed(self) -> float | None:
        """Seconds to iterate one epoch of a Keras fit input (None for native impls)."""
        return self.ask("feed")["seconds"]


def measure(names: list[str], depth: int, data: str, rounds: int) -> list[dict[str, Any]]:
    """Steady epoch seconds of several implementations, interleaved round by round.

    All servers are built first; then each round trains one epoch on each in
    turn, so load from other processes on a shared machine falls on all of
    them alike. Reports the median and the minimum (the least disturbed) epoch.
    """
    servers = {}
    try:
        for name in names:
            servers[name] = EpochServer(name, depth, data)
        epochs: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name, server in servers.items():
                epochs[name].append(server.epoch())
        results = []
        for name, server in servers.items():
            r: dict[str, Any] = {"impl": name, "depth": depth, "epochs": epochs[name],
                                 "median_s": statistics.median(epochs[name]),
                                 "min_s": min(epochs[name])}
            feed = server.feed()
            if feed is not None:
                r["feed_s"] = feed
                r["feed_share_of_min"] = feed / r["min_s"]
            results.append(r)
        return results
    finally:
        for server in servers.values():
            server.close()


# ---- child side -------------------------------------------------------------------------


def _keras_feed_seconds(impl: Any) -> float:
    """One epoch's pass over the fit input through Keras's own data adapter, no training.

    jax/torch: the adapter's iterator is exactly what fit consumes. tensorflow:
    the cached tf.data pipeline iterated eagerly, an upper bound (fit iterates
    it inside its tf.function).
    """
    import keras
    from keras.src.trainers.data_adapters import get_data_adapter

    adapter = get_data_adapter(impl._train, shuffle=False)
    backend = keras.backend.backend()
    start = time.perf_counter()
    adapter.on_epoch_begin()
    if backend == "jax":
        batches: Any = adapter.get_jax_iterator()
    elif backend == "torch":
        batches = adapter.get_torch_dataloader()
    else:
        batches = adapter.get_tf_dataset()
    for _ in batches:
        pass
    adapter.on_epoch_end()
    return time.perf_counter() - start


def _build(args: argparse.Namespace) -> tuple[Answer, Handlers]:
    """Build and warm up the implementation; its info, and the `epoch` and `feed` requests."""
    entry = registry.get(args.impl)
    data = load_data(args.data)
    spec = RunSpec(impl=args.impl, layer_sizes=layers_for_depth(args.depth),
                   batch_size=args.batch_size, device="cpu")
    impl = entry.load()(spec, data, init_weights(data.vocab, spec.layer_sizes, 32, 0))
    for _ in range(2):  # compile, and trace the short last batch
        impl.train_epoch()
        impl.synchronize()

    def epoch() -> Answer:
        start = time.perf_counter()
        impl.train_epoch()
        impl.synchronize()
        return {"seconds": time.perf_counter() - start}

    def feed() -> Answer:
        keras = entry.target.startswith("impls.keras")
        return {"seconds": _keras_feed_seconds(impl) if keras else None}

    return {"ready": True, "versions": impl.versions()}, {"epoch": epoch, "feed": feed}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="steady-epoch timing of the implementations")
    p.add_argument("--serve", action="store_true", help="(child) run the epoch server")
    # Cache-fed implementations only: keras-reference* prepare their own data, which
    # this in-process epoch server (no `prepare` phase) does not run.
    p.add_argument("--impl", default=",".join(
        name for name, e in registry.REGISTRY.items() if e.shared_start))
    p.add_argument("--depth", default="1,3")
    p.add_argument("--data", default="standin", help="tiny | standin | ml-100k")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if args.serve:
        args.depth = int(args.depth)
        serve(partial(_build, args))
    results = []
    with interruptible():  # SIGTERM too closes the children on the way out
        for depth in parse_int_list(args.depth, "--depth"):
            for r in measure(args.impl.split(","), depth, args.data, args.rounds):
                results.append(r)
                print(json.dumps(r), flush=True)
    print_ratios(results)


def print_ratios(results: list[dict[str, Any]]) -> None:
    """The issue's speed targets as ratios of steady epochs (medians, and minima)."""
    by = {(r["impl"], r["depth"]): (r["median_s"], r["min_s"]) for r in results}
    pairs = [("keras-jax", "jax"), ("keras-jax", "jax-scan"), ("keras-jax", "jax-padded"),
             ("keras-jax", "jax-dedup"),
             ("keras-torch", "torch"), ("keras-torch", "torch-compile"),
             ("keras-torch", "torch-dedup"), ("keras-tf", "jax")]
    for depth in sorted({d for _, d in by}):
        for slow, fast in pairs:
            if (slow, depth) in by and (fast, depth) in by:
                med = by[(slow, depth)][0] / by[(fast, depth)][0]
                low = by[(slow, depth)][1] / by[(fast, depth)][1]
                print(f"depth {depth}: {fast} vs {slow}: {med:.2f}x (medians), {low:.2f}x (minima)")


if __name__ == "__main__":
    main()
