"""`KerasReference`: the keras-io deep recommender program's own way of working, as an impl.

Its data comes from its own pipeline (pipeline.py, timed as prepare_s), its split
from TF's seeded shuffle, its initial weights from Keras's initialisers seeded by
`keras.utils.set_random_seed(spec.seed)`; it ignores the harness's weights
(`shared_start` is False). The model is the reference's, as the Keras
implementation already writes it (impls/keras_model/model.py), with the reference's
candidate set: row r is movie id r, row 0 (no movie) included. Row 0's title and
genre means are 0/0, so its embedding is NaN; what each backend's top-k does with
it is measured at build and recorded in resolved_options.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, ClassVar

import keras
import numpy as np

from bench.contract import RetrievalImpl
from bench.data.dataset import QUERY_FEATURES, Dataset
from bench.spec import RunSpec
from bench.weights import Weights
from impls.keras_model import _backend
from impls.keras_model.impl import _JIT_COMPILE, KerasRetrieval
from impls.keras_model.model import RetrievalModel
from impls.keras_reference import pipeline
from impls.keras_reference.pipeline import ReferenceData

NAN_PROBE_QUERIES = 1000  # test queries whose top-k is checked for the NaN row


class KerasReference(KerasRetrieval):
    """The reference program's pipeline, split, initialisation and candidate set."""

    shared_start: ClassVar[bool] = False

    @classmethod
    def prepare(cls, spec: RunSpec, data: Dataset) -> ReferenceData:
        return pipeline.prepare(spec, data)

    def __init__(self, spec: RunSpec, data: ReferenceData, weights: Weights) -> None:
        RetrievalImpl.__init__(self, spec, data, weights)  # not KerasRetrieval's: its own data
        if spec.jit not in _JIT_COMPILE:
            raise ValueError(f"jit must be auto, on or off, got {spec.jit!r}")
        if spec.devices != 1:
            raise ValueError("keras-reference trains on one device, as the reference program")
        self._backend = _backend.for_current_backend(spec.device)
        self._steps = int(data.train.cardinality().numpy())
        keras.utils.set_random_seed(spec.seed)  # before any layer: Keras's own initial weights
        with self._backend.scope():
            b = self._backend
            self._candidates = b.to_tensors(data.candidates)
            self._queries = {split: b.to_tensors({k: rows[k] for k in QUERY_FEATURES})
                             for split, rows in (("train", data.train_rows),
                                                 ("test", data.test_rows))}
            self._test = data.test
            self.model = RetrievalModel(
                data.vocab, spec.layer_sizes, spec.embedding_dim,
                retrieval_k=min(spec.top_k, data.num_candidates), steps_per_epoch=self._steps,
                candidate_ids=keras.ops.convert_to_tensor(data.candidates["movie_id"]),
            )
            self.refresh_candidates()  # as the reference's constructor: builds the candidate tower
            self.model.compile(optimizer=keras.optimizers.Adagrad(spec.learning_rate),
                               jit_compile=_JIT_COMPILE[spec.jit])
            self.model(next(iter(data.train.take(1)))[0])  # build the query tower
            self._variables = self.model.neutral_variables()
        self._nan_facts: dict[str, Any] | None = None  # probed once, outside the timed build

    def train_epoch(self, max_steps: int | None = None) -> np.ndarray:
        steps = self._steps if max_steps is None else max(0, min(self._steps, max_steps))
        if steps == 0:
            return np.zeros(0)
        batches = self.data.train if steps == self._steps else self.data.train.take(steps)
        self.loop_hooks.begin()
        with self._backend.scope():
            self.model.fit(batches, epochs=1, verbose=0, shuffle=False)
            # StepLosses holds this epoch's per-step losses (fit resets metrics per epoch).
            losses = keras.ops.convert_to_numpy(self.model.step_losses.values)[:steps]
        self.loop_hooks.end()
        return losses.astype(np.float64)

    def refresh_candidates(self) -> None:
        """As the reference's update_candidates: the candidate tower's `predict` on every row."""
        with self._backend.scope():
            self.model.retrieval.update_candidates(self._candidate_predictions())

    def _candidate_predictions(self) -> Any:
        return self.model.candidate_model.predict(self._candidates, verbose=0)

    def candidate_embeddings(self) -> np.ndarray:
        with self._backend.scope():
            return np.asarray(self._candidate_predictions(), np.float32)

    def evaluation_targets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Its own candidate rows (row 0 included) and its own test split's 5-star ratings."""
        test = self.data.test_rows
        return self.data.candidates["movie_id"], test["movie_id"], test["label"] > 0.9

    def import_weights(self, weights: Weights) -> None:
        raise NotImplementedError(
            "keras-reference starts from Keras's own initial weights (shared_start is False); "
            "it cannot import the harness's")

    def versions(self) -> dict[str, str]:
        return {**super().versions(), "tensorflow": version("tensorflow")}

    def resolved_options(self) -> dict[str, Any]:
        if self._nan_facts is None:  # first asked right after the build, before training
            self._nan_facts = self._probe_nan_row()
        return {**super().resolved_options(), "split_seed": self.data.split_seed,
                **self._nan_facts}

    def _probe_nan_row(self) -> dict[str, Any]:
        """What this backend's top-k (the retrieval layer the metric uses) does with NaN rows.

        Candidate rows whose embedding has a NaN (row 0: 0/0 title and genre means), the
        share of test queries whose top-k holds one (1.0: a slot lost in every list), its
        median rank there, and the sign bits of those NaN scores: x86 makes 0/0 a NaN with
        the sign bit set, which XLA's top-k (jax) orders below every number and TF's and
        torch's order above.
        """
        retrieval = self.model.retrieval  # its candidates were refreshed at build
        cands = keras.ops.convert_to_numpy(retrieval.candidate_embeddings).astype(np.float32)
        nan_rows = np.flatnonzero(np.isnan(cands).any(axis=1))
        queries = self.query_embeddings("test")[:NAN_PROBE_QUERIES]
        with self._backend.scope():
            q = keras.ops.convert_to_tensor(queries)
            top = keras.ops.convert_to_numpy(retrieval(q))
            scores = keras.ops.convert_to_numpy(
                retrieval.compute_score(q, retrieval.candidate_embeddings))[:, nan_rows]
        held = np.isin(top, nan_rows)
        share = float(held.any(axis=1).mean()) if len(top) else 0.0
        first = [int(np.flatnonzero(r)[0]) for r in held if r.any()]
        return {
            "nan_candidate_rows": int(nan_rows.size),
            "nan_candidate_row_ids": [int(r) for r in nan_rows[:10]],
            "topk_returns_nan_row": share > 0,
            "topk_nan_row_query_share": share,
            "topk_nan_row_rank": int(np.median(first)) if first else None,
            "topk_probe_queries": int(len(top)),
            # A NaN's sign bit decides where XLA's total order puts it (jax: -NaN last).
            "nan_scores_sign_bit": sorted({bool(b) for b in np.signbit(scores[np.isnan(scores)])}),
        }
