"""`KerasRetrieval`: the Keras model behind the contract, on whichever backend KERAS_BACKEND picks.

Training is `model.fit` for one epoch per call (Keras compiles its train
function once and reuses it across calls); evaluation is `model.evaluate` on
the test split, as the reference does. All data is made into backend tensors
(and, for fit/evaluate, into batches) in the constructor.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import keras
import numpy as np

from bench.contract import RetrievalImpl
from bench.data.dataset import Dataset
from bench.spec import RunSpec
from bench.weights import Weights, check_weights, weight_shapes
from impls import _shared
from impls.keras_model import _backend
from impls.keras_model.model import RetrievalModel

_JIT_COMPILE: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
_SYNC: dict[str, str] = {
    "jax": "jax.block_until_ready",
    "torch": "torch.cuda.synchronize on cuda; none on cpu (eager CPU ops are synchronous)",
    "tensorflow": "tensor .numpy() read-back",
}


class KerasRetrieval(RetrievalImpl):
    """The reference's Keras 3 model (keras.ops, keras_rs), trained by fit, scored by evaluate."""

    framework: ClassVar[str] = keras.backend.backend()
    sync_mechanism: ClassVar[str] = _SYNC.get(keras.backend.backend(), "unknown")

    def __init__(self, spec: RunSpec, data: Dataset, weights: Weights) -> None:
        super().__init__(spec, data, weights)
        if spec.jit not in _JIT_COMPILE:
            raise ValueError(f"jit must be auto, on or off, got {spec.jit!r}")
        self._backend = _backend.for_current_backend(spec.device, spec.devices)
        self._shapes = weight_shapes(data.vocab, spec.layer_sizes, spec.embedding_dim)
        self._steps = data.train.num_batches(spec.batch_size)
        with self._backend.scope():
            self._make_inputs(spec, data)
            self.model = RetrievalModel(
                data.vocab, spec.layer_sizes, spec.embedding_dim,
                retrieval_k=_shared.effective_k(spec.top_k, data), steps_per_epoch=self._steps,
                candidate_ids=self._candidate_ids,
            )
            self._build()
            self.model.compile(
                optimizer=keras.optimizers.Adagrad(
                    spec.learning_rate,
                    initial_accumulator_value=_shared.ADAGRAD_INITIAL_ACCUMULATOR,
                    epsilon=_shared.ADAGRAD_EPSILON,
                ),
                jit_compile=_JIT_COMPILE[spec.jit],
            )
            self.model.optimizer.build(self.model.trainable_variables)
            self._variables = self.model.neutral_variables()
            self.import_weights(weights)

    def _make_inputs(self, spec: RunSpec, data: Dataset) -> None:
        """Every array the run uses, as backend tensors (fit/evaluate inputs already batched)."""
        b = self._backend
        self._train = b.fit_input(_shared.split_arrays(data.train), spec.batch_size)
        b.check_evaluation(len(data.test.label), spec.batch_size)
        self._test = b.fit_input(_shared.split_arrays(data.test), spec.batch_size)
        self._queries = {
            split: b.to_tensors(_shared.query_arrays(_shared.split_arrays(s)))
            for split, s in (("train", data.train), ("test", data.test))
        }
        self._candidates = b.to_tensors(_shared.candidate_arrays(data.candidates))
        self._candidate_ids = keras.ops.convert_to_tensor(
            np.asarray(data.candidates["movie_id"], np.int32)
        )

    def _build(self) -> None:
        """Create every variable: candidates into the retrieval layer, then one forward pass."""
        self.model.update_candidates(self._candidates)
        features, _ = next(_backend.iterate(self._train))
        self.model(features)

    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        steps = _shared.steps_to_run(self.spec, self.data, max_steps)
        if steps == 0:
            return np.zeros(0)
        self.loop_hooks.begin()
        with self._backend.scope():
            self.model.fit(
                self._train, epochs=1, verbose=0, shuffle=False,
                steps_per_epoch=None if steps == self._steps else steps,
                callbacks=self._backend.fit_callbacks(),
            )
            # StepLosses holds this epoch's per-step losses (fit resets metrics per epoch).
            losses = keras.ops.convert_to_numpy(self.model.step_losses.values)[:steps]
        self.loop_hooks.end()
        return losses.astype(np.float64)

    def refresh_candidates(self) -> None:
        with self._backend.scope():
            self.model.update_candidates(self._candidates)

    def evaluate(self) -> float:
        with self._backend.scope():
            result = self.model.evaluate(self._test, verbose=0, return_dict=True)
        return float(result[self.model.top_k_metric.name])

    def candidate_embeddings(self) -> np.ndarray:
        with self._backend.scope():
            out = self.model.candidate_model(self._candidates)
        return keras.ops.convert_to_numpy(out).astype(np.float32)

    def query_embeddings(self, split: Literal["train", "test"]) -> np.ndarray:
        with self._backend.scope():
            out = self.model.query_model(self._queries[split])
        return keras.ops.convert_to_numpy(out).astype(np.float32)

    def to_device(self, queries: np.ndarray) -> Any:
        with self._backend.scope():
            return keras.ops.convert_to_tensor(np.asarray(queries, np.float32))

    def retrieve(self, queries: Any, k: int) -> Any:
        retrieval = self.model.retrieval
        with self._backend.scope():
            scores = retrieval.compute_score(queries, retrieval.candidate_embeddings)
            return keras.ops.top_k(scores, _shared.effective_k(k, self.data))[1]

    def to_numpy(self, x: Any) -> np.ndarray:
        return keras.ops.convert_to_numpy(x)

    def synchronize(self, x: Any = None) -> None:
        self._backend.synchronize(
            x if x is not None else [v.value for v in self.model.trainable_variables]
        )

    def export_weights(self) -> Weights:
        return {
            name: keras.ops.convert_to_numpy(v).astype(np.float32)
            for name, v in self._variables.items()
        }

    def import_weights(self, weights: Weights) -> None:
        check_weights(weights, self._shapes)
        for name, variable in self._variables.items():
            variable.assign(np.asarray(weights[name], np.float32))
        optimizer = self.model.optimizer
        for acc in optimizer._accumulators:  # Keras Adagrad's per-variable state
            acc.assign(keras.ops.full(acc.shape, _shared.ADAGRAD_INITIAL_ACCUMULATOR, acc.dtype))
        optimizer.iterations.assign(0)

    def versions(self) -> dict[str, str]:
        return self._backend.versions()

    def device_name(self) -> str:
        return self._backend.device_name()

    def resolved_options(self) -> dict[str, Any]:
        """jit_compile as Keras resolved it, and what the train step therefore runs as.

        On TensorFlow without a GPU, Keras resolves "auto" to False: the step is
        still a traced tf.function graph, just without XLA.
        """
        jit = bool(self.model.jit_compile)
        step = {"jax": "jax.jit (XLA)", "tensorflow": "tf.function + XLA",
                "torch": "torch.compile"}[self._backend.name]
        if not jit:
            step = "tf.function graph" if self._backend.name == "tensorflow" else "eager"
        out: dict[str, Any] = {"keras_backend": self._backend.name, "jit_compile": jit,
                               "train_step": step}
        data_parallel = self._backend.data_parallel_info(self.spec.batch_size)
        return {**out, "data_parallel": data_parallel} if data_parallel else out
