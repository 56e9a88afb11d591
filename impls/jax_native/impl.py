"""Native JAX implementations: `JaxRetrieval` (jitted step), `JaxScanRetrieval` (scanned
epoch), `JaxPaddedRetrieval` (jitted step, Keras's input layout) and
`JaxDedupRetrieval` (jitted step on deduplicated batches).

The first three compute what the Keras model computes, each tower row by row,
batches = contiguous row-order slices of the train split. They differ in the
batch layout (impls/_packed.py) they train on, through one jitted step
(model.train_step): the first two take "packed" batches (one gather per
tower, padding ids left out of the means); `JaxPaddedRetrieval` takes the
padded "rows" Keras takes and looks each feature up apart, so XLA gets the
work keras-jax gives it. `JaxDedupRetrieval` takes "distinct" batches, the
towers once per distinct row: less arithmetic, same result up to summation
order.

Every array the run needs is put on the device in the constructor, already cut
into the batches training iterates, so an epoch is only compiled calls.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from bench.contract import RetrievalImpl
from bench.data.dataset import Dataset
from bench.spec import RunSpec
from bench.weights import Weights, check_weights, weight_shapes
from impls import _packed, _shared
from impls.jax_native import mesh, model


def resolve_device(request: str) -> jax.Device:
    """The jax device for `spec.device` (auto: jax's default backend)."""
    _shared.check_device_request(request)
    if request == "cpu":
        return jax.devices("cpu")[0]
    if request == "gpu":
        try:
            return jax.devices("gpu")[0]
        except _shared.JAX_NO_BACKEND:
            raise _shared.no_gpu_error("jax") from None
    return jax.devices()[0]


# donate_argnums: params and accumulators are consumed, so XLA updates them in place.
_train_step = jax.jit(model.train_step, donate_argnums=(0, 1))
_scan_epoch = jax.jit(model.scan_epoch, donate_argnums=(0, 1))
_query_tower = jax.jit(model.query_tower)
_candidate_tower = jax.jit(model.candidate_tower)
_top_k_rows = jax.jit(model.top_k_rows, static_argnums=2)
_batch_hits = jax.jit(model.batch_hits, static_argnums=4)

AOT_METHOD = "jax_aot_lower_compile"  # jit(f).lower(args).compile(), timed by the harness


def _signature(tree: Any) -> tuple:
    """Structure, shapes and dtypes of a pytree of arrays: what one compilation serves."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((x.shape, x.dtype) for x in leaves)


class JaxRetrieval(RetrievalImpl):
    """Native JAX: the whole training step (forward, backward, Adagrad) under one jax.jit.

    Row-wise, as the Keras model (one tower row per rating), on table-batched
    inputs (impls/_packed.py).
    """

    framework: ClassVar[str] = "jax"
    sync_mechanism: ClassVar[str] = "jax.block_until_ready"
    layout: ClassVar[str] = "packed"  # of the training batches (impls/_packed.py)
    train_step: ClassVar[Any] = staticmethod(_train_step)  # a subclass may swap it
    _params: dict[str, jax.Array]  # set by import_weights, consumed (donated) by every step
    _acc: dict[str, jax.Array]  # Adagrad accumulators, same names and shapes

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        super().__init__(spec, data, weights)
        self._device = resolve_device(spec.device)
        self._shapes = weight_shapes(data.vocab, spec.layer_sizes, spec.embedding_dim)
        self._put: Any = partial(jax.device_put, device=self._device)
        self._step_fn: Any = self.train_step
        self._mesh = self._data_parallel(spec) if spec.devices > 1 else None
        host = _packed.run_arrays(data, spec.batch_size, self.layout)
        self._host_train = host.train
        self._arrays = host.map(self._put)
        if self._mesh is not None:
            self._arrays.train[:] = [mesh.put_batch(b, self._mesh) for b in host.train]
        self._lr = jnp.float32(spec.learning_rate)
        self._k = _shared.effective_k(spec.top_k, data)
        # One step function per batch: the jitted step until compile_ahead swaps in
        # the ahead-of-time compiled executables (the same XLA program).
        self._step_fns: list[Any] = [self._step_fn] * len(self._arrays.train)
        self.import_weights(weights)
        self.refresh_candidates()

    def compile_ahead(self) -> str | None:
        """Lower and compile the step once per batch shape an epoch runs (full, short last)."""
        compiled: dict[tuple, Any] = {}
        steps = _shared.steps_to_run(self.spec, self.data, self.spec.steps_per_epoch)
        for i, batch in enumerate(self._arrays.train[:steps]):
            sig = _signature(batch)
            if sig not in compiled:
                compiled[sig] = self._compile(self._step_fn, batch)
            self._step_fns[i] = compiled[sig]
        return AOT_METHOD

    def _data_parallel(self, spec: RunSpec) -> Any:
        """The mesh of a run over spec.devices (impls/jax_native/mesh.py); rows layout, and
        everything but the training batches replicated over it."""
        if type(self) not in _DATA_PARALLEL:
            raise ValueError(f"{type(self).__name__}: no data-parallel path (--devices "
                             f"{spec.devices}); {', '.join(c.__name__ for c in _DATA_PARALLEL)} "
                             "have one")
        dp_mesh = mesh.make_mesh(spec.devices, self._device)
        self.layout = "rows"  # type: ignore[misc]  # "packed" does not shard by rows
        rep = mesh.replicated(dp_mesh)
        self._put = partial(jax.device_put, device=rep)
        self._step_fn = jax.jit(model.train_step, donate_argnums=(0, 1),
                                out_shardings=(rep, rep, rep))
        return dp_mesh

    def resolved_options(self) -> dict[str, Any]:
        if self._mesh is None:
            return {}
        return {"data_parallel": mesh.info(self._mesh, self.spec.batch_size, self.layout)}

    def _compile(self, fn: Any, batches: Any) -> Any:
        return fn.lower(self._params, self._acc, batches, self._lr).compile()

    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        steps = _shared.steps_to_run(self.spec, self.data, max_steps)
        self.loop_hooks.begin()
        losses = []
        sync = self._mesh is not None and mesh.simulated(self._mesh)  # _shared.XLA_CPU_STEP_SYNC
        for step, batch in zip(self._step_fns[:steps], self._arrays.train[:steps], strict=True):
            self._params, self._acc, loss = step(self._params, self._acc, batch, self._lr)
            losses.append(jax.block_until_ready(loss) if sync else loss)
        out = np.asarray(jnp.stack(losses), dtype=np.float64) if losses else np.zeros(0)
        self.loop_hooks.end()
        return out

    def refresh_candidates(self) -> None:
        self._cand_emb = _candidate_tower(self._params, self._arrays.candidates)

    def evaluate(self) -> float:
        hits = total = jnp.float32(0.0)
        movie_ids = self._arrays.candidates["movie_id"]
        for batch in self._arrays.test:
            h, w = _batch_hits(self._params, self._cand_emb, movie_ids, batch, self._k)
            hits, total = hits + h, total + w
        total_f = float(total)
        return float(hits) / total_f if total_f else 0.0

    def candidate_embeddings(self) -> np.ndarray:
        return np.asarray(_candidate_tower(self._params, self._arrays.candidates), np.float32)

    def query_embeddings(self, split: Literal["train", "test"]) -> np.ndarray:
        return np.asarray(_query_tower(self._params, self._arrays.queries[split]), np.float32)

    def to_device(self, queries: np.ndarray) -> Any:
        return self._put(np.asarray(queries, dtype=np.float32))

    def retrieve(self, queries: Any, k: int) -> Any:
        return _top_k_rows(queries, self._cand_emb, _shared.effective_k(k, self.data))

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def synchronize(self, x: Any = None) -> None:
        jax.block_until_ready(x if x is not None else (self._params, self._acc, self._cand_emb))

    def export_weights(self) -> Weights:
        return {k: np.array(v, dtype=np.float32) for k, v in self._params.items()}

    def import_weights(self, weights: Weights) -> None:
        check_weights(weights, self._shapes)
        # Fresh device buffers (copies): the jitted step donates and overwrites them.
        self._params = {k: self._put(np.array(weights[k], np.float32)) for k in self._shapes}
        self._acc = {
            k: self._put(np.full(s, _shared.ADAGRAD_INITIAL_ACCUMULATOR, np.float32))
            for k, s in self._shapes.items()
        }

    def versions(self) -> dict[str, str]:
        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def device_name(self) -> str:
        d = self._device
        return "cpu" if d.platform == "cpu" else f"{d.platform}:{d.id} ({d.device_kind})"


class JaxScanRetrieval(JaxRetrieval):
    """Native JAX: the epoch's full batches as one compiled lax.scan, the short last batch apart.

    The scan needs equal-shaped steps, so the remainder batch (if any) runs
    through the jitted single step after the scan: same order, same maths.
    """

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        super().__init__(spec, data, weights)
        self._num_full = len(data.train) // spec.batch_size
        self._stacked = self._put(_packed.stack(self._host_train[: self._num_full]))
        short = len(self._arrays.train) > self._num_full
        self._rest = self._arrays.train[-1] if short else None
        # Prefixes for max_steps < num_full, made on request and kept (tests only).
        self._prefixes: dict[int, Any] = {self._num_full: self._stacked}
        self._scan_fns: dict[int, Any] = {}  # scan length -> executable, from compile_ahead
        self._rest_fn: Any = _train_step

    def compile_ahead(self) -> str | None:
        """Lower and compile the scan and the short last batch's step, as an epoch runs them."""
        steps = _shared.steps_to_run(self.spec, self.data, self.spec.steps_per_epoch)
        n_scan = min(steps, self._num_full)
        if n_scan:
            self._scan_fns[n_scan] = self._compile(_scan_epoch, self._prefix(n_scan))
        if steps > n_scan and self._rest is not None:
            self._rest_fn = self._compile(_train_step, self._rest)
        return AOT_METHOD

    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        steps = _shared.steps_to_run(self.spec, self.data, max_steps)
        n_scan = min(steps, self._num_full)
        self.loop_hooks.begin()
        parts = []
        if n_scan:
            scan = self._scan_fns.get(n_scan, _scan_epoch)
            self._params, self._acc, losses = scan(
                self._params, self._acc, self._prefix(n_scan), self._lr
            )
            parts.append(losses)
        if steps > n_scan and self._rest is not None:
            self._params, self._acc, loss = self._rest_fn(
                self._params, self._acc, self._rest, self._lr
            )
            parts.append(loss[None])
        out = np.asarray(jnp.concatenate(parts), dtype=np.float64) if parts else np.zeros(0)
        self.loop_hooks.end()
        return out

    def _prefix(self, n: int) -> Any:
        """The first n stacked batches (only partial epochs need a slice)."""
        if n not in self._prefixes:
            self._prefixes[n] = jax.tree.map(lambda a: a[:n], self._stacked)
        return self._prefixes[n]


class JaxPaddedRetrieval(JaxRetrieval):
    """Native JAX, jitted step on the padded inputs Keras takes, one lookup per feature.

    Masked means as Keras computes them (gather all 16 title positions, multiply
    by the mask, sum), so XLA gets the work keras-jax's step gives it. It shows
    what the table-batched layout of `JaxRetrieval` gains. It runs at 0.85-0.95x
    keras-jax's speed here (bench/studies/speed.py). XLA fuses the two programs
    differently: keras-jax's has one gather-select fusion per masked feature
    where this one materialises the gathered rows and the broadcast mask apart.
    Gathering with jnp.take, as Keras does, changed nothing.
    """

    layout: ClassVar[str] = "rows"


class JaxDedupRetrieval(JaxRetrieval):
    """Native JAX, jitted step on deduplicated ("distinct") batches (impls/_packed.py).

    Each tower runs once per distinct input row of a batch and the ratings
    gather their rows back; title/genre means are segment sums over the real
    ids only (padding skipped). Less arithmetic, same result up to float
    summation order: an algorithmic shortcut any framework could use.
    """

    layout: ClassVar[str] = "distinct"


# The variants with a data-parallel path (--devices > 1): the jitted step on rows batches.
_DATA_PARALLEL = (JaxRetrieval, JaxPaddedRetrieval)
