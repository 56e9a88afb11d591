"""Where the native JAX training step's time goes, and the floor under any same-maths step.

    python -m bench.studies.jax_phases [--data ml-100k] [--depth 1,3] [--rounds 7] [--out F.md]

Times, per training step (median over rounds, each round one pass over the
epoch's full batches, synchronised once at its end):

- the jitted step as `jax` runs it (packed inputs, impls/_packed.py), and as
  `jax-padded` runs it (the padded inputs and per-feature lookups of Keras);
- the packed step's forward loss alone, and its forward and backward (every
  gradient written out; inside the step XLA fuses them into the update, so
  this phase can take longer than the whole step);
- a jitted call that only passes the step's arguments through (dispatch);
- the floor: the forward and backward of the dense layers and the loss alone,
  on fixed tower inputs. Every implementation of this model does these
  matrix products on every rating (the Keras model too), so no XLA step
  that keeps the model's arithmetic can be faster than this on the machine.

and keras-jax's steady epoch divided by its steps, from a child process
(bench/studies/speed.py) asked for one epoch in every round. keras-jax over
the floor bounds what any XLA step that keeps the model's arithmetic can gain
over keras-jax on this machine.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bench import envinfo
from bench.run.sweep import parse_int_list
from bench.spec import layers_for_depth
from bench.studies.speed import EpochServer, load_data
from bench.weights import init_weights, tower_input_dims
from impls import _packed, _shared
from impls.jax_native import model

BATCH = 1000
STEP = "step, packed inputs (jax)"
FLOOR = "floor: dense layers + loss, forward + backward"


Phase = tuple[Callable[[Any, Any], Any], Any, list[Any]]  # (call, initial state, batches)


def per_step_ms(
    phases: dict[str, Phase], rounds: int, others: dict[str, Callable[[], float]]
) -> dict[str, float]:
    """Median ms per call of `state = call(state, batch)`, one pass over the batches per round.

    Every phase is compiled first; then each round times one pass of each phase
    in turn, and asks each of `others` for its own ms per step, so a slow spell
    of the machine falls on all of them alike.
    """
    # Two warm-up calls: the second sees the state types the timed calls see.
    states = {name: jax.block_until_ready(call(call(state, batches[0]), batches[-1]))
              for name, (call, state, batches) in phases.items()}
    times: dict[str, list[float]] = {name: [] for name in phases}
    for _ in range(rounds):
        for name, (call, _, batches) in phases.items():
            state = states[name]
            start = time.perf_counter()
            for batch in batches:
                state = call(state, batch)
            states[name] = jax.block_until_ready(state)
            times[name].append((time.perf_counter() - start) / len(batches) * 1e3)
        for name, other in others.items():
            times.setdefault(name, []).append(other())
    return {name: statistics.median(t) for name, t in times.items()}


def dense_flops(layers: tuple[int, ...], embedding_dim: int) -> int:
    """FLOPs of both towers' dense layers per step: forward, and backward (dX and dW)."""
    total = 0
    for width in tower_input_dims(embedding_dim).values():
        for units in layers:
            total += 2 * BATCH * width * units
            width = units
    return 3 * total


def _step_ms(server: EpochServer, steps: int) -> float:
    """One steady keras-jax epoch in the child, per step, in ms."""
    return server.epoch() / steps * 1e3


def measure_phases(
    data_kind: str, depth: int, rounds: int, others: dict[str, Callable[[], float]]
) -> dict[str, float]:
    """ms per step of each phase (see the module docstring), and of `others`, interleaved."""
    data = load_data(data_kind)
    layers = layers_for_depth(depth)
    weights = init_weights(data.vocab, layers, 32, 0)
    host = [b for b in _shared.host_batches(data.train, BATCH) if len(b["label"]) == BATCH]
    packed = [jax.device_put(b) for b in _packed.train_batches(host, data.vocab, "packed")]
    padded = [jax.device_put(b) for b in host]
    lr = jnp.float32(0.05)

    def fresh_state() -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        params = {k: jnp.asarray(v) for k, v in weights.items()}
        acc = {k: jnp.full(v.shape, _shared.ADAGRAD_INITIAL_ACCUMULATOR, jnp.float32)
               for k, v in weights.items()}
        return params, acc

    def stepper(step: Callable[..., Any]) -> Callable[[Any, Any], Any]:
        jitted = jax.jit(step, donate_argnums=(0, 1))
        return lambda state, batch: jitted(state[0], state[1], batch, lr)[:2]

    def forward(p: Any, a: Any, b: Any, r: Any) -> Any:
        return p, a, model.loss_fn(p, b)

    # The gradient phases keep the params fixed and write the gradients into the
    # buffers of the previous ones (the state's second half), as a step would.
    def backward(p: Any, a: Any, b: Any, r: Any) -> Any:
        loss, grads = jax.value_and_grad(model.loss_fn)(p, b)
        return p, grads, loss

    rng = np.random.default_rng(0)
    inputs = [jax.device_put({f"{tower}_in": rng.normal(size=(BATCH, width)).astype(np.float32)
                              for tower, width in tower_input_dims(32).items()}
                             | {"label": b["label"]}) for b in host]

    def floor(p: Any, a: Any, b: Any, r: Any) -> Any:
        # Dense layers only; the inputs' gradients are returned so that XLA keeps them.
        loss, grads = jax.value_and_grad(_dense_loss, argnums=(0, 1))(p, b)
        return p, grads, loss

    dense = {k: v for k, v in fresh_state()[0].items() if "/dense_" in k}
    zeros = partial(jax.tree.map, jnp.zeros_like)
    dense_state = (dense, (zeros(dense), zeros(inputs[0])))
    grad_state = (fresh_state()[0], zeros(fresh_state()[0]))
    return per_step_ms({
        STEP: (stepper(model.train_step), fresh_state(), packed),
        "step, padded inputs (jax-padded)": (stepper(model.train_step), fresh_state(),
                                             padded),
        "forward loss, packed": (stepper(forward), fresh_state(), packed),
        "forward + backward, packed": (stepper(backward), grad_state, packed),
        "dispatch only (arguments passed through)": (stepper(lambda p, a, b, r: (p, a, r)),
                                                     fresh_state(), packed),
        FLOOR: (stepper(floor), dense_state, inputs),
    }, rounds, others)


def _dense_loss(dense: dict[str, jax.Array], batch: dict[str, jax.Array]) -> jax.Array:
    """The loss from fixed tower inputs through the dense layers (gradients w.r.t. both)."""
    query = model.dense_stack(dense, "query", batch["query_in"])
    return model.mse(query, model.dense_stack(dense, "candidate", batch["candidate_in"]),
                     batch["label"])


KERAS = "keras-jax (fit, in its own process)"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description="phases of the native JAX training step")
    p.add_argument("--data", default="standin", help="tiny | standin | ml-100k")
    p.add_argument("--depth", default="1,3")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", type=Path, default=None, help="also write the report here (markdown)")
    args = p.parse_args(argv)
    steps = load_data(args.data).train.num_batches(BATCH)
    env, git = envinfo.capture(), envinfo.git_info()
    lines = ["Produced by:", "", "    python -m bench.studies.jax_phases " + shlex.join(argv), "",
             f"Machine: {env['cpu_model']} ({env['cpu_count_logical']} logical cores), CPU only; "
             f"jax {jax.__version__}, keras {env['packages'].get('keras')}; commit {git['commit']}"
             f"{' (dirty tree)' if git['dirty'] else ''}; load average before: "
             f"{envinfo.load_average()}.", "", __doc__.split("\n\n", 2)[2].strip()]
    for depth in parse_int_list(args.depth, "--depth"):
        server = EpochServer("keras-jax", depth, args.data, BATCH)
        try:
            phases = measure_phases(args.data, depth, args.rounds,
                                    {KERAS: partial(_step_ms, server, steps)})
        finally:
            server.close()
        lines += phase_table(phases, args.data, depth, args.rounds)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def phase_table(phases: dict[str, float], data: str, depth: int, rounds: int) -> list[str]:
    """Markdown lines: the phases' ms per step, the floor's FLOP rate, the two ratios."""
    gflop = dense_flops(layers_for_depth(depth), 32) / 1e9
    floor, keras = phases[FLOOR], phases[KERAS]
    return [
        "", f"## Depth {depth}: layers {layers_for_depth(depth)}, {data}, batch {BATCH}", "",
        f"Median of {rounds} rounds, ms per step:", "", "| phase | ms |", "|---|---|",
        *(f"| {name} | {ms:.3f} |" for name, ms in phases.items()), "",
        f"- Dense layers: {gflop * 1e3:.1f} MFLOP per step, {gflop / floor * 1e3:.0f} GFLOP/s "
        "in the floor.",
        f"- keras-jax / jax step: **{keras / phases[STEP]:.2f}x**.",
        f"- keras-jax / floor: **{keras / floor:.2f}x**, the most an XLA step that keeps the "
        "model's arithmetic could gain over keras-jax here.",
    ]


if __name__ == "__main__":
    main()
